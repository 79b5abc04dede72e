"""Verifies sessiond access tokens the way another service would: PyJWT's
PyJWKClient fetches the JWKS from the URL alone, picks the key by the
token's `kid`, and the key's own algorithm is the only one accepted.

Usage: pyjwt_verify.py JWKS_URL TOKEN...
Prints "kid sub" per token; exits non-zero on the first token that does
not verify. Run by the end-to-end test tests/api/keys.rs.
"""

import sys

import jwt


def main() -> int:
    url, tokens = sys.argv[1], sys.argv[2:]
    # A fresh client per run, and no key cache: every token is checked
    # against the JWKS as served now.
    client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False)
    for token in tokens:
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            issuer="sessiond",
            options={"require": ["exp", "iat", "sub", "sid"]},
        )
        print(jwt.get_unverified_header(token)["kid"], claims["sub"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
