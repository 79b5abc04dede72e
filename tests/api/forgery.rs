//! Forged tokens against the running server, as an attacker would make
//! them from what sessiond publishes (a real token and the JWKS): `alg:
//! none`, HS256 signed with the public key (the classic confusion), an
//! unknown `kid`, keys offered in the token's own `jwk` / `jku` headers.
//! Every one is 401 on the authenticated API and on forward auth, and
//! `{"active": false}` on introspection; the `jku` URL is never fetched.
//! A real token whose key was retired longer ago than the retirement
//! window is refused on every door too, even after it was verified once.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{CHROME_WINDOWS, Db, Server};

crate::on_both_databases!(
    forged_tokens_are_refused_everywhere,
    a_retired_key_past_its_window_verifies_nothing,
);

const PW: &str = "correct horse battery";
const CLIENT: (&str, &str) = ("forgery-check", "forgery-check-secret");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token of `header` and `claims` with `signature` (raw bytes).
fn token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// A token of `header` and `claims` signed with HMAC-SHA256 under `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let mut h: jsonwebtoken::Header = serde_json::from_value(header.clone()).expect("header");
    h.alg = jsonwebtoken::Algorithm::HS256;
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&h, claims, &key).expect("sign")
}

/// Asserts that `s` refuses `forged` on every door.
#[track_caller]
fn refused(s: &Server, what: &str, forged: &str) {
    let r = s.get("/api/auth/me", Some(forged));
    assert_eq!(r.status, 401, "{what}: /api/auth/me answered {}", r.text);
    let r = s.get("/api/auth/verify", Some(forged));
    assert_eq!(r.status, 401, "{what}: forward auth answered {}", r.text);
    let (id, secret) = CLIENT;
    let r = s.send(
        s.client()
            .post(s.url("/oauth/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", forged)]),
    );
    assert_eq!(r.status, 200, "{what}: introspection answered {}", r.text);
    assert_eq!(r.body, json!({"active": false}), "{what}: introspection said more");
}

fn forged_tokens_are_refused_everywhere(db: Db) {
    let (id, secret) = CLIENT;
    let clients = format!("{id}:{secret}");
    let Some(s) = Server::start_with(db, &[("SESSIOND_INTROSPECTION_CLIENTS", &clients)]) else {
        return;
    };
    s.register("target", PW);
    let real = s.login("target", PW, CHROME_WINDOWS).access;
    s.get("/api/auth/me", Some(&real)).expect(200, None);

    let parts: Vec<&str> = real.split('.').collect();
    let decode = |part: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    let kid = header["kid"].as_str().expect("tokens name their key").to_owned();
    let jwks = s.get("/.well-known/jwks.json", None).body;
    let jwk = jwks["keys"].as_array().and_then(|k| k.first()).cloned().expect("a public key");

    // alg none, in any spelling, with and without the real kid.
    for alg in ["none", "None", "NONE"] {
        let forged = token(&json!({"alg": alg, "typ": "JWT", "kid": kid}), &claims, b"");
        refused(&s, &format!("alg {alg}"), &forged);
    }
    // HS256 keyed with what the JWKS publishes: the JWK itself, its `x`
    // parameter as text and as bytes.
    let x = jwk["x"].as_str().unwrap_or_default();
    let x_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(x).unwrap_or_default();
    for (what, secret) in [
        ("the JWK", jwk.to_string().into_bytes()),
        ("x as text", x.as_bytes().to_vec()),
        ("x", x_bytes),
    ] {
        let forged = hs256(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), &claims, &secret);
        refused(&s, &format!("HS256 keyed with {what}"), &forged);
    }
    // A kid the server never made, and no kid at all.
    let forged = hs256(&json!({"alg": "HS256", "kid": "not-a-key-of-ours"}), &claims, b"guess");
    refused(&s, "unknown kid", &forged);
    let forged = hs256(&json!({"alg": "HS256"}), &claims, b"guess");
    refused(&s, "no kid", &forged);

    // The attacker's own key offered in the token: `jwk` inline, `jku` as
    // a URL sessiond would have to fetch (a listener here notes any visit).
    let attacker = json!({"kty": "oct", "k": b64(b"attacker-secret"), "kid": "evil"});
    let forged = hs256(
        &json!({"alg": "HS256", "kid": "evil", "jwk": attacker}),
        &claims,
        b"attacker-secret",
    );
    refused(&s, "jwk header", &forged);
    let bait = TcpListener::bind("127.0.0.1:0").expect("listener");
    bait.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/jwks.json", bait.local_addr().expect("addr"));
    for kid_of_forged in [kid.as_str(), "evil"] {
        let forged = hs256(
            &json!({"alg": "HS256", "kid": kid_of_forged, "jku": url, "x5u": url}),
            &claims,
            b"attacker-secret",
        );
        refused(&s, "jku/x5u header", &forged);
    }
    std::thread::sleep(Duration::from_millis(200));
    if let Ok((mut visit, _)) = bait.accept() {
        let mut request = String::new();
        let _ = visit.read_to_string(&mut request);
        panic!("sessiond fetched the token's key URL: {request}");
    }

    // The real token is untouched by all of this.
    s.get("/api/auth/me", Some(&real)).expect(200, None);
}

/// A token verified once, whose key is then retired and (the clock moved
/// in the database, as a shortened token lifetime would leave it) past its
/// window: refused everywhere within the key set's one-second reload, and
/// its key gone from the JWKS.
fn a_retired_key_past_its_window_verifies_nothing(db: Db) {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, PgConnection, SqliteConnection};
    let (id, secret) = CLIENT;
    let clients = format!("{id}:{secret}");
    let Some(s) = Server::start_with(db, &[("SESSIOND_INTROSPECTION_CLIENTS", &clients)]) else {
        return;
    };
    s.register("rita", PW);
    let old = s.login("rita", PW, CHROME_WINDOWS).access;
    let kid = jsonwebtoken::decode_header(&old).ok().and_then(|h| h.kid).expect("a kid");
    s.get("/api/auth/me", Some(&old)).expect(200, None);
    let out = s.cli(&["keys", "rotate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Retired, within its window: still verifies.
    std::thread::sleep(Duration::from_millis(1100));
    s.get("/api/auth/me", Some(&old)).expect(200, None);

    let sql = format!(
        "UPDATE signing_keys SET retired_at_ms = retired_at_ms - 86400000 WHERE kid = '{kid}' \
         AND state = 'retired'"
    );
    match db {
        Db::Sqlite => SqliteConnection::establish(s.database_url.trim_start_matches("sqlite://"))
            .expect("open the SQLite file")
            .batch_execute(&sql),
        Db::Postgres => PgConnection::establish(&s.database_url)
            .expect("connect to PostgreSQL")
            .batch_execute(&sql),
    }
    .expect("move the retirement a day back");

    let start = Instant::now();
    while s.get("/api/auth/me", Some(&old)).status == 200 {
        assert!(start.elapsed() < Duration::from_millis(2500), "the retired key still verifies");
        std::thread::sleep(Duration::from_millis(50));
    }
    refused(&s, "a retired key past its window", &old);
    let jwks = s.get("/.well-known/jwks.json", None).body;
    assert!(!jwks.to_string().contains(&kid), "{jwks}");
    // The user is not logged out: a new login signs with the new key.
    let new = s.login("rita", PW, CHROME_WINDOWS).access;
    s.get("/api/auth/me", Some(&new)).expect(200, None);
}
