//! Signing keys (issue 18, SPEC §6): the JWKS, tokens naming their key,
//! rotation by the API, the command line and across instances, keys that
//! survive a restart, and private keys encrypted at rest.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{CHROME_WINDOWS, Db, Server, create_admin, fresh_url, run_cli};

const PW: &str = "correct horse battery";

crate::on_both_databases!(
    jwks_and_api_rotation_log_nobody_out,
    keys_and_tokens_survive_a_restart,
    cli_rotation_reaches_the_running_server_within_a_second,
    pyjwt_verifies_every_algorithm_before_and_after_a_rotation,
    an_upgrade_keeps_the_generated_hs256_secret_verifying_old_tokens,
);

/// The `kid` header of a JWT.
fn kid(token: &str) -> String {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    header.kid.expect("tokens name their key")
}

/// The JWKS and its headers, checked for shape.
fn jwks(s: &Server) -> Vec<Value> {
    let r = s.get("/.well-known/jwks.json", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert!(r.body.get("success").is_none(), "not enveloped: {}", r.text);
    let keys = r.body["keys"].as_array().expect("keys").clone();
    for k in &keys {
        assert_eq!(k["use"], "sig", "{k}");
        for field in ["kid", "kty", "alg"] {
            assert!(k[field].is_string(), "{field} in {k}");
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} in {k}");
        }
    }
    keys
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|k| k["kid"].as_str().unwrap_or_default().to_owned()).collect()
}

/// Whether `s` accepts `token`.
fn accepted(s: &Server, token: &str) -> bool {
    match s.get("/api/auth/me", Some(token)).status {
        200 => true,
        401 => false,
        other => panic!("/api/auth/me answered {other}"),
    }
}

/// Verifies `token` offline from the published keys alone, as another
/// service would: the key by `kid`, the algorithm from the key.
fn verifies_offline(keys: &[Value], token: &str) -> bool {
    let kid = kid(token);
    let Some(jwk) = keys.iter().find(|k| k["kid"] == kid.as_str()) else { return false };
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("a JWK");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("a decoding key");
    let alg = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        other => panic!("unexpected alg {other:?}"),
    };
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&["sessiond"]);
    jsonwebtoken::decode::<Value>(token, &key, &v).is_ok()
}

fn jwks_and_api_rotation_log_nobody_out(db: Db) {
    let Some(s) = Server::start(db) else { return };
    // The default: EdDSA keys generated at the first start, the current
    // and the next one published.
    let before = jwks(&s);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(
        before.iter().all(|k| k["alg"] == "EdDSA" && k["kty"] == "OKP" && k["crv"] == "Ed25519")
    );
    s.register("kara", PW);
    let old = s.login("kara", PW, CHROME_WINDOWS);
    let old_kid = kid(&old.access);
    assert!(kids(&before).contains(&old_kid));
    assert!(verifies_offline(&before, &old.access));

    // Only an admin rotates.
    s.post("/api/admin/keys/rotate", Some(&old.access), json!({})).expect(403, Some("FORBIDDEN"));
    s.post("/api/admin/keys/rotate", None, json!({})).expect(401, Some("UNAUTHORIZED"));
    let admin = create_admin(&s, "kadmin", PW);
    let r = s.post("/api/admin/keys/rotate", Some(&admin.access), json!({}));
    r.expect(200, None);
    let listed = r.body["data"]["keys"].as_array().expect("keys").clone();
    assert_eq!(listed.len(), 3, "{}", r.text);
    let state = |kid: &str| {
        listed
            .iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(state(&old_kid).as_deref(), Some("retired"));
    assert!(!r.text.contains("\"d\""), "no private material: {}", r.text);

    // Nobody is logged out; new tokens carry the new kid, which was
    // published before it signed.
    assert!(accepted(&s, &old.access));
    assert!(accepted(&s, &admin.access));
    let new = s.login("kara", PW, CHROME_WINDOWS);
    let new_kid = kid(&new.access);
    assert_ne!(new_kid, old_kid);
    assert!(kids(&before).contains(&new_kid), "the new key was the published next key");
    assert_eq!(state(&new_kid).as_deref(), Some("current"));
    let after = jwks(&s);
    assert_eq!(after.len(), 3, "current, next and the retired key");
    assert!(verifies_offline(&after, &old.access));
    assert!(verifies_offline(&after, &new.access));

    // Metrics count the keys by state.
    let metrics = s.get("/metrics", None).text;
    for line in [
        r#"sessiond_signing_keys{state="current"} 1"#,
        r#"sessiond_signing_keys{state="next"} 1"#,
        r#"sessiond_signing_keys{state="retired"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // The rotation is audited.
    let audit = s.get("/api/audit?action=key_rotate", Some(&admin.access));
    audit.expect(200, None);
    assert!(audit.text.contains("key_rotate"), "{}", audit.text);
}

fn keys_and_tokens_survive_a_restart(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_JWT_ALG", "ES256")]) else { return };
    s.register("kyle", PW);
    let t = s.login("kyle", PW, CHROME_WINDOWS);
    let before = jwks(&s);
    assert!(before.iter().all(|k| k["alg"] == "ES256" && k["kty"] == "EC" && k["crv"] == "P-256"));
    let s = s.restart();
    assert_eq!(jwks(&s), before);
    assert!(accepted(&s, &t.access));
    assert_eq!(kid(&s.login("kyle", PW, CHROME_WINDOWS).access), kid(&t.access));
}

fn cli_rotation_reaches_the_running_server_within_a_second(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_JWT_ALG", "RS256")]) else { return };
    s.register("kris", PW);
    let old = s.login("kris", PW, CHROME_WINDOWS);
    let list = s.cli(&["keys", "list"], None);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(text.contains(&kid(&old.access)) && text.contains("current") && text.contains("RS256"));
    assert!(text.contains("next"), "{text}");
    let out = s.cli(&["keys", "rotate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    loop {
        let t = s.login("kris", PW, CHROME_WINDOWS);
        if kid(&t.access) != kid(&old.access) {
            break;
        }
        assert!(start.elapsed() < Duration::from_millis(1500), "still the old key");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(accepted(&s, &old.access));
    assert!(verifies_offline(&jwks(&s), &old.access));
}

#[test]
fn a_configured_secret_publishes_nothing_and_has_nothing_to_rotate() {
    let secret = "a-configured-secret-of-enough-bytes-0123456789";
    let Some(s) = Server::start_with(Db::Sqlite, &[("SESSIOND_JWT_SECRET", secret)]) else {
        return;
    };
    assert!(jwks(&s).is_empty());
    let admin = create_admin_with(&s, "ksec", &[("SESSIOND_JWT_SECRET", secret)]);
    let header = jsonwebtoken::decode_header(&admin.access).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert!(header.kid.is_some());
    s.post("/api/admin/keys/rotate", Some(&admin.access), json!({})).expect(403, Some("FORBIDDEN"));
}

/// `create_admin`, for a server whose command line needs its environment.
fn create_admin_with(s: &Server, username: &str, env: &[(&str, &str)]) -> crate::support::Tokens {
    let out = cli_with(
        &s.database_url,
        env,
        &["user", "create", "--username", username, "--password-stdin", "--role", "admin"],
        Some(PW),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.login(username, PW, CHROME_WINDOWS)
}

fn cli_with(
    database_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = Command::new(crate::support::binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn sessiond");
    if let (Some(mut input), Some(s)) = (child.stdin.take(), stdin) {
        input.write_all(s.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("output")
}

#[test]
fn two_instances_rotate_through_one_and_the_other_follows_within_a_second() {
    let Some(url) = fresh_url(Db::Postgres) else { return };
    let a = Server::start_on(&url, &[]);
    let b = Server::start_on(&url, &[]);
    a.register("kim2", PW);
    let old = b.login("kim2", PW, CHROME_WINDOWS);
    assert_eq!(kid(&a.login("kim2", PW, CHROME_WINDOWS).access), kid(&old.access));
    let admin = create_admin(&a, "kadmin2", PW);
    a.post("/api/admin/keys/rotate", Some(&admin.access), json!({})).expect(200, None);
    let rotated = Instant::now();
    let new_kid = kid(&a.login("kim2", PW, CHROME_WINDOWS).access);
    assert_ne!(new_kid, kid(&old.access));
    loop {
        let t = b.login("kim2", PW, CHROME_WINDOWS);
        if kid(&t.access) == new_kid {
            break;
        }
        assert!(rotated.elapsed() < Duration::from_secs(1), "B still signs with the old key");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Tokens of both keys verify on both.
    let new_a = a.login("kim2", PW, CHROME_WINDOWS);
    for s in [&a, &b] {
        assert!(accepted(s, &old.access));
        assert!(accepted(s, &new_a.access));
    }
    assert_eq!(jwks(&a), jwks(&b));
}

#[test]
fn private_keys_are_encrypted_at_rest_and_a_wrong_key_stops_start_up() {
    use tokens::SigningKeyStore as _;
    let url = store::testing::fresh_sqlite_url();
    let kek = "5a".repeat(32);
    let env = [("SESSIOND_KEY_ENCRYPTION_KEY", kek.as_str())];
    let s = Server::start_on(&url, &env);
    s.register("kelly", PW);
    let t = s.login("kelly", PW, CHROME_WINDOWS);
    drop(s);
    // The private keys, opened with the right key, appear nowhere in the
    // database files (the file and its write-ahead log).
    let store = store::Store::connect(&url, &store::StoreOptions::default()).expect("store");
    let vault = tokens::KeyVault::parse(&kek).expect("key");
    let stored = store.load_keys().expect("keys");
    assert_eq!(stored.len(), 2);
    let path = url.trim_start_matches("sqlite://").to_owned();
    let files: Vec<u8> = ["", "-wal"]
        .iter()
        .flat_map(|suffix| std::fs::read(format!("{path}{suffix}")).unwrap_or_default())
        .collect();
    for key in &stored {
        assert!(key.sealed);
        let plain = key.open(Some(&vault)).expect("opens with the right key");
        // The Ed25519 seed: the last 32 bytes of the PKCS#8 document.
        let seed = &plain.material.expose()[16..];
        assert!(!files.windows(seed.len()).any(|w| w == seed), "a private key in the clear");
    }
    drop(store);
    // The right key starts, and the old token still verifies.
    let s = Server::start_on(&url, &env);
    assert!(accepted(&s, &t.access));
    drop(s);
    // A wrong key stops start-up with one clear line.
    let wrong = "a5".repeat(32);
    let out = cli_with(&url, &[("SESSIOND_KEY_ENCRYPTION_KEY", wrong.as_str())], &["serve"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("SESSIOND_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(!stderr.contains(&wrong) && !stderr.contains(&kek));
    // And without a key, too.
    let out = run_cli(&url, &["keys", "list"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSIOND_KEY_ENCRYPTION_KEY"));
}

/// The pinned virtualenv's Python (`make venv`), when it has PyJWT; `None`
/// (and a loud warning) otherwise, a failure under CI.
fn pyjwt_python() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let has_pyjwt = Command::new(&python)
        .args(["-c", "import jwt, cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_pyjwt {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "PyJWT is missing from .venv: run `make venv`"
    );
    eprintln!("WARNING: skipping the PyJWT test: no .venv with PyJWT (run `make venv`)");
    None
}

/// PyJWT's `PyJWKClient` verifies `tokens` from the JWKS URL of `s` alone.
#[track_caller]
fn pyjwt_verifies(python: &std::path::Path, s: &Server, tokens: &[&str]) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/jwks/pyjwt_verify.py");
    let out = Command::new(python)
        .arg(script)
        .arg(s.url("/.well-known/jwks.json"))
        .args(tokens)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyJWT refused: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for token in tokens {
        assert!(stdout.contains(&kid(token)), "{stdout}");
    }
}

fn pyjwt_verifies_every_algorithm_before_and_after_a_rotation(db: Db) {
    let Some(python) = pyjwt_python() else { return };
    for alg in ["EdDSA", "ES256", "RS256"] {
        let Some(s) = Server::start_with(db, &[("SESSIOND_JWT_ALG", alg)]) else { return };
        s.register("pyjwt", PW);
        let before = s.login("pyjwt", PW, CHROME_WINDOWS);
        assert_eq!(
            format!("{:?}", jsonwebtoken::decode_header(&before.access).expect("header").alg),
            alg
        );
        pyjwt_verifies(&python, &s, &[&before.access]);
        let admin = create_admin(&s, "pyjwt_admin", PW);
        s.post("/api/admin/keys/rotate", Some(&admin.access), json!({})).expect(200, None);
        let after = s.login("pyjwt", PW, CHROME_WINDOWS);
        assert_ne!(kid(&after.access), kid(&before.access), "{alg}: the new key signs");
        pyjwt_verifies(&python, &s, &[&before.access, &after.access]);
    }
}

fn an_upgrade_keeps_the_generated_hs256_secret_verifying_old_tokens(db: Db) {
    use diesel::connection::SimpleConnection as _;
    use diesel::{Connection as _, PgConnection, SqliteConnection};
    // A database as earlier versions left it: migrated up to the migration
    // before signing keys, with the HS256 secret they generated in
    // `settings`.
    let Some(url) = fresh_url(db) else { return };
    let out = run_cli(&url, &["migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = "ab".repeat(64);
    let insert = format!("INSERT INTO settings (name, value) VALUES ('jwt_secret', '{secret}');");
    match db {
        Db::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            let mut conn = SqliteConnection::establish(path).expect("open the SQLite file");
            conn.batch_execute(&format!(
                "DROP TABLE signing_keys;
                 DELETE FROM __diesel_schema_migrations WHERE version = '20261207000009';
                 {insert}"
            ))
            .expect("roll back to before signing keys");
        }
        Db::Postgres => {
            let mut conn = PgConnection::establish(&url).expect("connect to PostgreSQL");
            conn.batch_execute(&format!(
                "DROP TABLE signing_keys;
                 DROP FUNCTION sessiond_notify_keys();
                 DELETE FROM __diesel_schema_migrations WHERE version = '20261207000012';
                 {insert}"
            ))
            .expect("roll back to before signing keys");
        }
    }
    let s = Server::start_on(&url, &[]);
    s.register("olga", PW);
    // A token of the old version: HS256 with the generated secret, no kid.
    let t = s.login("olga", PW, CHROME_WINDOWS);
    let mut claims: Value =
        jsonwebtoken::dangerous::insecure_decode::<Value>(&t.access).expect("claims").claims;
    claims["jti"] = json!("an-old-token");
    let old = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    assert!(accepted(&s, &old), "the old token still verifies");
    // New tokens are EdDSA, and the legacy secret is never published.
    assert_eq!(
        jsonwebtoken::decode_header(&t.access).expect("header").alg,
        jsonwebtoken::Algorithm::EdDSA
    );
    let keys = jwks(&s);
    assert_eq!(keys.len(), 2);
    assert!(!kids(&keys).iter().any(|k| k == "legacy-hs256"));
    let list = String::from_utf8_lossy(&run_cli(&url, &["keys", "list"], None).stdout).into_owned();
    assert!(list.contains("legacy-hs256") && list.contains("retired"), "{list}");
    // Another secret without kid: refused.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret-0123456789abcdef0123"),
    )
    .expect("sign");
    assert!(!accepted(&s, &forged));
}
