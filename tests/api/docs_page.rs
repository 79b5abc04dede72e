//! `/docs` in a real browser: headless Chromium (Debian's `chromium`)
//! loads the page from sessiond, runs Swagger UI on the served OpenAPI
//! document, and must show the operation list with `POST /api/auth/login`.
//! The page's Content-Security-Policy allows only sessiond's own origin, so
//! a page that reached for a CDN would fail here (and log a violation).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Db, Server, uuid_like};

/// The browser, or `None` after a loud warning; under `CI=true` a missing
/// browser fails the test instead (`.ci/run` installs it).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("SESSIOND_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .filter(|p| p.exists());
    if found.is_none() {
        let why = "Chromium not found (install Debian's `chromium`, or set SESSIOND_CHROMIUM)";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "CI needs it: {why}");
        eprintln!("\n***** WARNING: {why}; the /docs browser test is SKIPPED *****\n");
    }
    found
}

/// Loads `url` headless and returns the DOM once the page has settled, and
/// what the browser logged. The flags keep Chromium off the network (this
/// machine has none) and out of any profile but a fresh one.
fn render(browser: &PathBuf, url: &str) -> (String, String) {
    let profile = std::env::temp_dir().join(format!("sessiond-chromium-{}", uuid_like()));
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            // Virtual time runs until the page is idle (scripts, the
            // document's fetch), then the DOM is printed.
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The operation block `operations-<tag>-<operationId>` of the rendered
/// list, with its method and path.
fn operation<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"operations-{id}\""))?;
    let rest = &dom[start..];
    let end = rest[1..].find("id=\"operations-").map_or(rest.len(), |i| i + 1);
    Some(&rest[..end])
}

#[test]
fn docs_page_lists_the_operations_in_a_browser() {
    let Some(browser) = chromium() else { return };
    let Some(s) = Server::start(Db::Sqlite) else { return };

    // Slow machines (or a loaded CI) may need the budget more than once.
    let mut last = (String::new(), String::new());
    for _ in 0..3 {
        last = render(&browser, &s.url("/docs"));
        if operation(&last.0, "auth-login").is_some() {
            break;
        }
    }
    let (dom, log) = last;
    let login = operation(&dom, "auth-login").unwrap_or_else(|| {
        panic!(
            "no operation list in the rendered page\n--- DOM ---\n{dom}\n--- browser log ---\n{log}"
        )
    });
    assert!(login.contains(r#"<span class="opblock-summary-method">POST</span>"#), "{login}");
    assert!(login.contains(r#"data-path="/api/auth/login""#), "{login}");
    // The other areas are listed too.
    for id in
        ["sessions-listSessions", "analytics-getHeatmap", "pages-trackPage", "health-getReadiness"]
    {
        assert!(operation(&dom, id).is_some(), "{id} is not listed");
    }
    // Nothing was refused by the page's policy, and nothing failed to load:
    // every script and style came from sessiond.
    for line in log.lines() {
        assert!(
            !line.contains("Refused to") && !line.contains("net::ERR_"),
            "the docs page tried to load something it may not: {line}"
        );
    }
}

#[test]
fn docs_assets_are_served_with_their_types_and_unknown_ones_are_404() {
    let Some(s) = Server::start(Db::Sqlite) else { return };
    for (path, content_type) in [
        ("/docs", "text/html"),
        ("/docs/", "text/html"),
        ("/docs/init.js", "text/javascript"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
        ("/docs/favicon-32x32.png", "image/png"),
    ] {
        let r = s.send(s.client().get(s.url(path)));
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").is_some_and(|v| v.starts_with(content_type)), "{path}");
        assert!(
            r.header("content-security-policy").is_some_and(|v| v.contains("default-src 'none'"))
        );
    }
    // The big script travels gzipped to a client that asks for it.
    let fetch = |encoding: Option<&str>| {
        let mut req = s.client().get(s.url("/docs/swagger-ui-bundle.js"));
        if let Some(e) = encoding {
            req = req.header("accept-encoding", e);
        }
        let r = req.send().expect("bundle");
        assert_eq!(r.status(), 200);
        let coding = r.headers().get("content-encoding").map(|v| v.as_bytes().to_vec());
        (coding, r.bytes().expect("body").len())
    };
    let (coding, gzipped) = fetch(Some("gzip"));
    assert_eq!(coding.as_deref(), Some(&b"gzip"[..]));
    let (coding, plain) = fetch(None);
    assert_eq!(coding, None);
    assert!(gzipped * 2 < plain, "gzipped {gzipped} bytes vs plain {plain}");
    let page = s.send(s.client().get(s.url("/docs")));
    // Every script and style sheet the page names is one of ours.
    for needle in [
        "src=\"/docs/swagger-ui-bundle.js\"",
        "src=\"/docs/init.js\"",
        "href=\"/docs/swagger-ui.css\"",
    ] {
        assert!(page.text.contains(needle), "{needle}");
    }
    assert!(!page.text.contains("http://") && !page.text.contains("https://"));
    s.get("/docs/index.html", None).expect(404, Some("NOT_FOUND"));
    s.get("/docs/../Cargo.toml", None).expect(404, Some("NOT_FOUND"));
    s.get("/docs/swagger-ui.css.map", None).expect(404, Some("NOT_FOUND"));
    let r = s.send(s.client().post(s.url("/docs")));
    assert_eq!(r.status, 405);
}
