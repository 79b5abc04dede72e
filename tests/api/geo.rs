//! Client addresses behind trusted proxies, and session locations from a
//! MaxMind-format GeoIP database.

use serde_json::json;

use crate::mmdb::build_mmdb;
use crate::support::{CHROME_WINDOWS, Db, Server, uuid_like};

crate::on_both_databases!(forwarded_address_and_location_only_from_trusted_proxies);

const PW: &str = "correct horse battery";

fn login_via(s: &Server, forwarded_for: &str) -> serde_json::Value {
    let req = s
        .client()
        .post(s.url("/api/auth/login"))
        .header("User-Agent", CHROME_WINDOWS)
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({"username": "gina", "password": PW}));
    let r = s.send(req);
    r.expect(200, None);
    r.body["data"].clone()
}

fn forwarded_address_and_location_only_from_trusted_proxies(db: Db) {
    let dir = std::env::temp_dir().join(format!("sessiond-geo-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("city.mmdb");
    std::fs::write(&path, build_mmdb([203, 0, 113, 0], 24, Some("Testville"), "XX", "Testland"))
        .expect("write mmdb");
    let geo = path.to_string_lossy().into_owned();

    // The test client is the proxy (127.0.0.1): its forwarded address counts.
    let Some(s) = Server::start_with(
        db,
        &[("SESSIOND_GEOIP_DB", &geo), ("SESSIOND_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8")],
    ) else {
        return;
    };
    s.register("gina", PW);
    // Right-most untrusted hop wins; 10.1.2.3 is another trusted proxy.
    let d = login_via(&s, "198.51.100.9, 203.0.113.7, 10.1.2.3");
    assert_eq!(d["session"]["ip_address"], "203.0.113.7");
    assert_eq!(d["session"]["location"], "Testville, XX");
    let listed = s.get("/api/sessions", Some(d["access_token"].as_str().unwrap_or_default()));
    listed.expect(200, None);
    assert_eq!(listed.body["data"][0]["location"], "Testville, XX");
    // An address the database does not know has no location.
    let d = login_via(&s, "198.51.100.9");
    assert_eq!(d["session"]["ip_address"], "198.51.100.9");
    assert!(d["session"]["location"].is_null());

    // Without trusted proxies the header is a client's claim: ignored.
    let Some(s) = Server::start_with(db, &[("SESSIOND_GEOIP_DB", &geo)]) else { return };
    s.register("gina", PW);
    let d = login_via(&s, "203.0.113.7");
    assert_eq!(d["session"]["ip_address"], "127.0.0.1");
    assert!(d["session"]["location"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}
