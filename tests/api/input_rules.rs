//! What registration refuses (issue 17, finding 9): emails that are not a
//! bare address, and names and passwords with control or format
//! characters, each with a 422 naming the field; ordinary and
//! international input still registers, on both databases alike.

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, Server};

crate::on_both_databases!(registration_refuses_what_could_spoof_and_keeps_the_rest);

const PW: &str = "correct horse battery";

fn registration_refuses_what_could_spoof_and_keeps_the_rest(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let refused = [
        ("email", json!("<a@x.com>")),
        ("email", json!("a@x.com>")),
        ("email", json!(".a@x.com")),
        ("email", json!("Ann <a@x.com>")),
        ("email", json!("a\u{202E}moc@x.com")),
        ("email", json!("a@[192.0.2.1]")),
        ("password", json!("\0\0\0\0\0\0\0\0")),
        ("password", json!("pass\u{202E}word1")),
        ("password", json!("\u{FEFF}password1")),
        ("name", json!("admin\u{202E}nimda")),
        ("name", json!("\u{FEFF}Alice")),
        ("name", json!("Al\u{200B}ice")),
        ("name", json!("Alice\u{2066}")),
    ];
    for (i, (field, value)) in refused.iter().enumerate() {
        let mut b = json!({"username": format!("refused{i}"), "password": PW});
        b[*field] = value.clone();
        let r = s.post("/api/auth/register", None, b.clone());
        r.expect(422, Some("VALIDATION_ERROR"));
        let details = r.body["error"]["details"].as_object().cloned().unwrap_or_default();
        assert_eq!(details.keys().collect::<Vec<_>>(), [field], "{b}: {}", r.text);
        assert!(details[*field].as_str().is_some_and(|p| !p.is_empty()), "{b}: {}", r.text);
        // Nothing was stored.
        s.post("/api/auth/login", None, json!({"username": format!("refused{i}"), "password": PW}))
            .expect(401, Some("INVALID_CREDENTIALS"));
    }
    // All at once: one problem per field.
    let r = s.post(
        "/api/auth/register",
        None,
        json!({"username": "mallory", "password": "\0\0\0\0\0\0\0\0",
               "email": "Mallory <m@x.com>", "name": "\u{202E}yrollam"}),
    );
    r.expect(422, Some("VALIDATION_ERROR"));
    let details = &r.body["error"]["details"];
    assert_eq!(
        details["email"],
        "must be a bare address such as name@example.com, without a name or angle brackets"
    );
    for field in ["password", "name"] {
        let problem = details[field].as_str().unwrap_or_default();
        assert!(problem.contains("control") && problem.contains("format"), "{field}: {details}");
    }

    // Ordinary input goes through: tags and subdomains, an international
    // domain, accents, Persian with its zero-width non-joiner, emoji with
    // their joiners, a password of spaces.
    let accepted = [
        ("ann", "a.b+tag@example.co.uk", "Ann-Marie O'Neil", PW),
        ("jose", "jose@bücher.de", "José Ñúñez", "contraseña segura"),
        ("sara", "sara@example.ir", "سارا می\u{200C}خواهد", "        "),
        (
            "fam",
            "fam@example.org",
            "👨\u{200D}👩\u{200D}👧 Family",
            "👩\u{200D}💻👩\u{200D}💻🔑🔑🔑🔑",
        ),
    ];
    for (username, email, name, password) in accepted {
        let r = s.post(
            "/api/auth/register",
            None,
            json!({"username": username, "password": password, "email": email, "name": name}),
        );
        r.expect(201, None);
        assert_eq!(
            (&r.body["data"]["email"], &r.body["data"]["name"]),
            (&json!(email), &json!(name))
        );
        s.login(username, password, CHROME_WINDOWS);
    }
    // Emails are compared case-insensitively, the international one too.
    let r = s.post(
        "/api/auth/login",
        None,
        json!({"email": "JOSE@BÜCHER.DE", "password": "contraseña segura"}),
    );
    r.expect(200, None);
    s.post(
        "/api/auth/register",
        None,
        json!({"username": "ann2", "password": PW,
        "email": "A.B+TAG@Example.CO.UK"}),
    )
    .expect(409, Some("EMAIL_TAKEN"));

    // The command line applies the same rules.
    let out = s.cli(
        &["user", "create", "--username", "cli_bad", "--password-stdin", "--email", "<a@x.com>"],
        Some(&format!("{PW}\n")),
    );
    assert!(!out.status.success(), "user create accepted <a@x.com>");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("email: must be a bare address"), "{err}");
}
