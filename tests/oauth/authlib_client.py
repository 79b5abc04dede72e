"""Authlib's OAuth 2 client, which nobody here wrote, against the running
binary (issue 18): it introspects (RFC 7662) and revokes (RFC 7009) with
HTTP Basic client credentials, exactly as it would against Keycloak.

Usage: python authlib_client.py BASE_URL CLIENT_ID CLIENT_SECRET
(the client must be in the server's SESSIOND_INTROSPECTION_CLIENTS).
"""

import json
import sys
import urllib.error
import urllib.request
import uuid

from authlib.integrations.requests_client import OAuth2Session

base_url, client_id, client_secret = sys.argv[1:4]
INTROSPECT = f"{base_url}/oauth/introspect"
REVOKE = f"{base_url}/oauth/revoke"


def call(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def status_of(method, path, token):
    try:
        return call(method, path, token=token)[0]
    except urllib.error.HTTPError as e:
        return e.code


def login(username, password):
    return call("POST", "/api/auth/login", {"username": username, "password": password, "app": "web"})[1]["data"]


def check(condition, message):
    if not condition:
        print(f"authlib client: FAILED: {message}", file=sys.stderr)
        sys.exit(1)


username, password = f"authlib_{uuid.uuid4().hex[:12]}", "authlib test password"
call("POST", "/api/auth/register", {"username": username, "password": password})
first, second = login(username, password), login(username, password)

client = OAuth2Session(client_id, client_secret)
check(client.token_endpoint_auth_method == "client_secret_basic", "Basic client auth")

# Active: an access token, then a refresh token.
answer = client.introspect_token(INTROSPECT, token=first["access_token"])
check(answer.status_code == 200, f"introspect: {answer.status_code} {answer.text}")
body = answer.json()
check(body["active"] is True and body["token_type"] == "access_token", body)
check(body["username"] == username and body["client_id"] == "web", body)
check(body["sid"] == first["session"]["id"] and body["sub"] == first["user"]["_id"], body)
body = client.introspect_token(INTROSPECT, token=first["refresh_token"], token_type_hint="refresh_token").json()
check(body["active"] is True and body["token_type"] == "refresh_token", body)

# A wrong secret is refused the RFC way.
wrong = OAuth2Session(client_id, client_secret + "x")
answer = wrong.introspect_token(INTROSPECT, token=first["access_token"])
check(answer.status_code == 401 and answer.json() == {"error": "invalid_client"}, answer.text)

# Revoke the access token: its session ends at once.
answer = client.revoke_token(REVOKE, token=first["access_token"], token_type_hint="access_token")
check(answer.status_code == 200 and answer.text == "", f"revoke: {answer.status_code} {answer.text}")
check(client.introspect_token(INTROSPECT, token=first["access_token"]).json() == {"active": False}, "revoked access token")
check(client.introspect_token(INTROSPECT, token=first["refresh_token"]).json() == {"active": False}, "its refresh token")
check(status_of("GET", "/api/auth/me", first["access_token"]) == 401, "revoked token still works")

# Revoke the other session by its refresh token.
check(client.introspect_token(INTROSPECT, token=second["access_token"]).json()["active"] is True, "second session")
answer = client.revoke_token(REVOKE, token=second["refresh_token"], token_type_hint="refresh_token")
check(answer.status_code == 200, f"revoke refresh: {answer.status_code}")
check(client.introspect_token(INTROSPECT, token=second["access_token"]).json() == {"active": False}, "second revoked")
check(status_of("GET", "/api/auth/me", second["access_token"]) == 401, "second still works")

# Unknown tokens: inactive, and revoking them is a quiet 200.
check(client.introspect_token(INTROSPECT, token="no-such-token").json() == {"active": False}, "unknown")
check(client.revoke_token(REVOKE, token="no-such-token").status_code == 200, "revoke unknown")
print("authlib client: introspection and revocation ok")
