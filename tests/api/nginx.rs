//! Forward auth behind a real nginx (Debian's `nginx-light`): a location
//! protected with `auth_request` to `/api/auth/verify` passes the identity
//! headers on to its upstream, and refuses the very next request after the
//! session is deleted. Nobody here wrote nginx: this is the configuration
//! the README tells users to paste.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::on_both_databases;
use crate::support::{CHROME_WINDOWS, Db, Server, uuid_like};

const PW: &str = "correct horse battery";

on_both_databases!(nginx_auth_request_passes_the_user_on_and_sees_revocations_at_once);

/// nginx, or `None` after a loud warning; under `CI=true` a missing nginx
/// fails the test instead (`.ci/run` installs it).
fn nginx() -> Option<PathBuf> {
    let found = std::env::var_os("SESSIOND_NGINX")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .filter(|p| p.exists());
    if found.is_none() {
        let why = "nginx not found (install Debian's `nginx-light`, or set SESSIOND_NGINX)";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "CI needs it: {why}");
        eprintln!("\n***** WARNING: {why}; the nginx forward-auth test is SKIPPED *****\n");
    }
    found
}

/// An upstream that answers every request with the request's own header
/// block, so the test sees what nginx passed on.
fn echo_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || echo(stream));
        }
    });
    port
}

fn echo(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    let mut head = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        head.push_str(&line);
        line.clear();
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        head.len()
    );
    let _ = (&stream).write_all(answer.as_bytes());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A running nginx, stopped (by its own pid) when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(dir: &Path, port: u16, sessiond: &str, upstream: u16, as_root: bool) -> String {
    let d = dir.display();
    // nginx drops to `nobody` when started as root; the temp dir is root's.
    let user = if as_root { "user root;" } else { "" };
    format!(
        r#"{user}
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_auth;
            auth_request_set $user $upstream_http_x_auth_username;
            auth_request_set $user_id $upstream_http_x_auth_user_id;
            proxy_set_header X-Auth-Username $user;
            proxy_set_header X-Auth-User-Id $user_id;
            proxy_pass http://127.0.0.1:{upstream};
        }}
        location = /_auth {{
            internal;
            proxy_pass {sessiond}/api/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
    }}
}}
"#
    )
}

fn start_nginx(binary: &Path, sessiond: &str, upstream: u16) -> (Nginx, u16) {
    let dir = std::env::temp_dir().join(format!("sessiond-nginx-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(&dir, port, sessiond, upstream, as_root)).expect("write conf");
    let globals = format!("daemon off; pid {0}/nginx.pid; error_log {0}/error.log;", dir.display());
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .arg("-g")
        .arg(globals)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let mut nginx = Nginx { child, dir };
    let since = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = nginx.child.try_wait().ok().flatten();
        if exited.is_some() || since.elapsed() > Duration::from_secs(10) {
            let mut log = String::new();
            let _ = std::fs::File::open(nginx.dir.join("error.log"))
                .and_then(|mut f| f.read_to_string(&mut log));
            panic!("nginx did not start ({exited:?}):\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (nginx, port)
}

fn nginx_auth_request_passes_the_user_on_and_sees_revocations_at_once(db: Db) {
    let Some(binary) = nginx() else { return };
    let Some(s) = Server::start(db) else { return };
    s.register("nginx_alice", PW);
    let t = s.login("nginx_alice", PW, CHROME_WINDOWS);
    let other = s.login("nginx_alice", PW, CHROME_WINDOWS);
    let upstream = echo_upstream();
    let (_nginx, port) = start_nginx(&binary, &s.base, upstream);
    let through = |token: Option<&str>| {
        let mut req = s.client().get(format!("http://127.0.0.1:{port}/app/page?x=1"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().expect("request through nginx");
        (r.status().as_u16(), r.text().unwrap_or_default().to_ascii_lowercase())
    };

    let (status, _) = through(None);
    assert_eq!(status, 401, "no token");
    let (status, _) = through(Some("garbage"));
    assert_eq!(status, 401, "bad token");
    let (status, seen) = through(Some(&t.access));
    assert_eq!(status, 200, "{seen}");
    assert!(seen.starts_with("get /app/page?x=1 "), "{seen}");
    assert!(seen.contains("\r\nx-auth-username: nginx_alice\r\n"), "upstream saw: {seen}");
    let user_id = t.data["user"]["_id"].as_str().expect("user id");
    assert!(seen.contains(&format!("\r\nx-auth-user-id: {user_id}\r\n")), "{seen}");

    let path = format!("/api/sessions/{}", t.session_id());
    s.request("DELETE", &path, Some(&other.access), None).expect(200, None);
    // The very next request through nginx.
    let (status, seen) = through(Some(&t.access));
    assert_eq!(status, 401, "revoked session let through: {seen}");
    assert_eq!(through(Some(&other.access)).0, 200);
}
