//! Argon2id password hashing.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use rand_core::OsRng;

use crate::Password;

/// Hashes and verifies passwords with Argon2id. CPU-bound (tens of
/// milliseconds at OWASP parameters): callers run it off the async executor.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified when the account does not exist
    /// so that "no such user" costs as long as "wrong password".
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", self.argon.params()).finish()
    }
}

impl Default for PasswordHasher {
    /// OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        Self::with_params(Params::new(19 * 1024, 2, 1, None).unwrap_or_default())
    }
}

impl PasswordHasher {
    /// Argon2id with the given parameters.
    pub fn with_params(params: Params) -> Self {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon, decoy: String::new() };
        hasher.decoy = hasher.hash_str(&uuid_like_random());
        hasher
    }

    /// Cheap parameters, for tests only: never use them for real passwords.
    pub fn fast_for_tests() -> Self {
        Self::with_params(Params::new(64, 1, 1, None).unwrap_or_default())
    }

    /// Hashes a password into a PHC string with a fresh random salt.
    pub fn hash(&self, password: &Password) -> String {
        self.hash_str(password.expose())
    }

    fn hash_str(&self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            // Only fails for parameters out of range, which the constructors rule out.
            .unwrap_or_default()
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash
    /// never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        match PasswordHash::new(hash) {
            Ok(parsed) => self.argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification without any account: called when
    /// the login names an unknown user, so timing does not reveal it.
    pub fn verify_decoy(&self, password: &str) {
        let _ = self.verify(password, &self.decoy);
    }
}

fn uuid_like_random() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id() {
        let h = PasswordHasher::fast_for_tests();
        let p = Password::parse("password123").unwrap_or_else(|_| unreachable!());
        let (a, b) = (h.hash(&p), h.hash(&p));
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(h.verify("password123", &a) && h.verify("password123", &b));
        assert!(!h.verify("password124", &a));
        assert!(!h.verify("password123", "not a hash"));
    }

    #[test]
    fn default_uses_owasp_parameters() {
        let h = PasswordHasher::default();
        let p = h.argon.params();
        assert!(p.m_cost() >= 19 * 1024 && p.t_cost() >= 2);
    }
}
