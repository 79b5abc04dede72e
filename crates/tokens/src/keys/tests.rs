//! The key module's tests: algorithms, generation, sets, rotation, sealing.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use super::*;
use kernel::Duration;
use time::macros::datetime;

const TTL: Duration = Duration::minutes(15);

#[test]
fn algorithms_parse_by_their_jose_names_only() {
    for alg in SigningAlg::ALL {
        assert_eq!(alg.as_str().parse::<SigningAlg>(), Ok(alg));
    }
    assert!("none".parse::<SigningAlg>().is_err());
    assert!("hs256".parse::<SigningAlg>().is_err());
    assert!("RS512".parse::<SigningAlg>().is_err());
}

#[test]
fn generated_keys_are_distinct_and_their_material_is_never_printed() {
    let now = datetime!(2026-12-07 12:00 UTC);
    for alg in SigningAlg::ALL {
        let a = SigningKey::generate(alg, KeyState::Current, now).unwrap();
        let b = SigningKey::generate(alg, KeyState::Next, now).unwrap();
        assert_ne!(a.kid, b.kid);
        assert_ne!(a.material.expose(), b.material.expose());
        assert!(a.kid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let printed = format!("{a:?}");
        assert!(printed.contains("redacted"), "{printed}");
        assert_eq!(a.activated_at, Some(now));
        assert_eq!(b.activated_at, None);
    }
}

#[test]
fn jwks_publishes_public_keys_of_every_verifying_key_and_never_a_secret() {
    let now = datetime!(2026-12-07 12:00 UTC);
    for alg in SigningAlg::ALL {
        let keys = initial_keys(alg, now).unwrap();
        let set = KeySet::new(&keys, TTL, now).unwrap();
        let jwks = serde_json::to_value(set.jwks(now)).unwrap();
        let published = jwks["keys"].as_array().unwrap();
        if alg == SigningAlg::HS256 {
            assert!(published.is_empty(), "{jwks}");
            continue;
        }
        assert_eq!(published.len(), 2, "current and next: {jwks}");
        for jwk in published {
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], "sig");
            assert!(keys.iter().any(|k| jwk["kid"] == k.kid.as_str()));
            // No private parameter of any key type (RFC 7518 §6).
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(jwk.get(private).is_none(), "{private} in {jwk}");
            }
        }
        let kty = &published[0]["kty"];
        let expected = match alg {
            SigningAlg::EdDSA => "OKP",
            SigningAlg::ES256 => "EC",
            _ => "RSA",
        };
        assert_eq!(kty, expected);
    }
}

#[test]
fn rotation_moves_every_key_one_step_and_keeps_the_retired_key_for_its_window() {
    let t0 = datetime!(2026-12-07 12:00 UTC);
    let keys = initial_keys(SigningAlg::EdDSA, t0).unwrap();
    let (old_current, old_next) = (keys[0].kid.clone(), keys[1].kid.clone());
    let t1 = t0 + Duration::days(30);
    let new_next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, t1).unwrap();
    let fresh = new_next.kid.clone();
    let rotated = rotate(&keys, new_next, t1);
    let state = |kid: &str| rotated.iter().find(|k| k.kid == kid).map(|k| k.state);
    assert_eq!(state(&old_current), Some(KeyState::Retired));
    assert_eq!(state(&old_next), Some(KeyState::Current));
    assert_eq!(state(&fresh), Some(KeyState::Next));
    let set = KeySet::new(&rotated, TTL, t1).unwrap();
    assert_eq!(set.current().kid, old_next);
    assert_eq!(set.jwks(t1).keys.len(), 3);
    // The retired key leaves the JWKS once its last token has expired.
    let after = t1 + retirement_window(TTL);
    assert_eq!(set.jwks(after).keys.len(), 2);
    assert!(set.verifier(Some(&old_current), after).is_none());
    assert!(set.verifier(Some(&old_current), after - Duration::seconds(1)).is_some());
    // A set built after the window leaves it out altogether.
    let later = KeySet::new(&rotated, TTL, after).unwrap();
    assert_eq!(later.infos().count(), 2);
}

#[test]
fn a_set_needs_one_current_key() {
    let now = datetime!(2026-12-07 12:00 UTC);
    let next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, now).unwrap();
    assert!(matches!(KeySet::new(&[next], TTL, now), Err(KeyError::NoCurrentKey)));
    let a = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
    let b = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
    assert!(KeySet::new(&[a, b], TTL, now).is_err());
}

#[test]
fn material_of_one_algorithm_is_refused_as_another() {
    let now = datetime!(2026-12-07 12:00 UTC);
    let mut key = SigningKey::generate(SigningAlg::ES256, KeyState::Current, now).unwrap();
    key.alg = SigningAlg::EdDSA;
    assert!(matches!(KeySet::new(&[key], TTL, now), Err(KeyError::BadMaterial(_))));
}

#[test]
fn sealed_material_opens_only_with_its_key_and_its_kid() {
    let now = datetime!(2026-12-07 12:00 UTC);
    let vault = KeyVault::parse(&"ab".repeat(32)).unwrap();
    let key = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
    let stored = StoredKey::seal(&key, Some(&vault)).unwrap();
    assert!(stored.sealed);
    let seed = &key.material.expose()[16..];
    assert!(!stored.key.material.expose().windows(seed.len()).any(|w| w == seed));
    let opened = stored.open(Some(&vault)).unwrap();
    assert_eq!(opened.material.expose(), key.material.expose());
    // Another key, no key, or the blob under another kid: refused.
    use base64::Engine as _;
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let other = KeyVault::parse(&other).unwrap();
    assert!(matches!(stored.open(Some(&other)), Err(KeyError::WrongEncryptionKey)));
    assert!(matches!(stored.open(None), Err(KeyError::EncryptionKeyMissing)));
    let mut moved = stored.clone();
    moved.key.kid = "another".into();
    assert!(matches!(moved.open(Some(&vault)), Err(KeyError::WrongEncryptionKey)));
    // Unsealed material still opens with a vault configured.
    let plain = StoredKey::seal(&key, None).unwrap();
    assert!(plain.open(Some(&vault)).is_ok());
}

#[test]
fn encryption_keys_parse_as_hex_or_base64_of_32_bytes() {
    assert!(KeyVault::parse(&"0f".repeat(32)).is_ok());
    assert!(KeyVault::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_ok());
    assert!(KeyVault::parse("short").is_err());
    assert!(KeyVault::parse(&"0f".repeat(16)).is_err());
    assert!(format!("{:?}", KeyVault::parse(&"0f".repeat(32)).unwrap()).contains("redacted"));
}
