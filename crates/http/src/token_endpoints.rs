//! Settings of the endpoints other services call to check sessiond tokens
//! (SPEC §6): forward auth's cookie and the introspection clients.

use sha2::{Digest as _, Sha256};

/// What `/api/auth/verify` and `/oauth/introspect` need beyond the use
/// cases.
#[derive(Debug, Clone, Default)]
pub struct TokenEndpoints {
    /// The cookie `/api/auth/verify` reads the access token from when no
    /// bearer token came (`SESSIOND_VERIFY_COOKIE`); `None`: bearer only.
    pub verify_cookie: Option<String>,
    /// Who may introspect with HTTP Basic (`SESSIOND_INTROSPECTION_CLIENTS`).
    pub introspection_clients: IntrospectionClients,
}

/// The introspection clients: ids with their secrets, kept only as SHA-256
/// hashes so that checking a secret compares two fixed-length values in
/// constant time and a memory dump shows no secret.
#[derive(Clone, Default)]
pub struct IntrospectionClients {
    clients: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for IntrospectionClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ids only: hashes of secrets have no business in a log.
        f.debug_list().entries(self.clients.iter().map(|(id, _)| id)).finish()
    }
}

impl IntrospectionClients {
    /// Parses `id:secret,id:secret,…` (blanks around entries ignored; an
    /// empty list allows no client). The error is one line that names the
    /// entry by position, never its secret.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut clients: Vec<(String, [u8; 32])> = Vec::new();
        for (i, entry) in list.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let n = i + 1;
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(format!("entry {n} is not of the form id:secret"));
            };
            if id.is_empty() || secret.is_empty() {
                return Err(format!("entry {n} has an empty id or secret"));
            }
            if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("entry {n}: the id contains a space or control character"));
            }
            if clients.iter().any(|(known, _)| known == id) {
                return Err(format!("entry {n} repeats the client id {id:?}"));
            }
            clients.push((id.to_owned(), digest(secret)));
        }
        Ok(Self { clients })
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether `secret` is the secret of client `id`. The secret is hashed
    /// whether or not the id is known, and the hashes are compared without
    /// an early exit, so the time taken says nothing about the secret.
    pub fn check(&self, id: &str, secret: &str) -> bool {
        let presented = digest(secret);
        let Some((_, expected)) = self.clients.iter().find(|(known, _)| known == id) else {
            return false;
        };
        presented.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_parse_and_check() {
        let c = IntrospectionClients::parse(" api:s3cret , gw:a:b:c ,").expect("valid");
        assert!(c.check("api", "s3cret"));
        assert!(c.check("gw", "a:b:c"), "the secret is everything after the first colon");
        assert!(!c.check("api", "s3cre"));
        assert!(!c.check("api", "s3cret "));
        assert!(!c.check("gw", "s3cret"));
        assert!(!c.check("nobody", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(IntrospectionClients::parse("").expect("empty").is_empty());
    }

    #[test]
    fn malformed_lists_are_refused_in_one_line_without_the_secret() {
        for bad in ["api", "api:", ":secret", "a b:secret", "api:x,api:y"] {
            let e = IntrospectionClients::parse(bad).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
            assert!(e.starts_with("entry "), "{e}");
        }
        let e = IntrospectionClients::parse("api:topsecret,api:topsecret").expect_err("dup");
        assert!(!e.contains("topsecret"), "{e}");
    }
}
