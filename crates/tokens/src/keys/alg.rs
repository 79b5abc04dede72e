//! The signature algorithms sessiond signs with.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::Algorithm;

/// The algorithms sessiond signs with (`SESSIOND_JWT_ALG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// HMAC-SHA-256: one shared secret; whoever verifies can also mint.
    HS256,
    /// Ed25519: small keys, fast, deterministic signatures (the default).
    EdDSA,
    /// ECDSA over P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl SigningAlg {
    /// Every algorithm, for documentation and tests.
    pub const ALL: [Self; 4] = [Self::HS256, Self::EdDSA, Self::ES256, Self::RS256];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Whether keys of this algorithm have a public half that may be
    /// published. HS256 secrets never are.
    pub fn is_asymmetric(self) -> bool {
        self != Self::HS256
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    /// Exactly the JOSE names (case-sensitive, as in a JWT header).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of HS256, EdDSA, ES256, RS256"))
    }
}
