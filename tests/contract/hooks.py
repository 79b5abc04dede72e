"""Schemathesis hooks: every request carries a live access token.

The token belongs to an administrator (created by run.sh through the
`sessiond user create` command), so the admin operations are exercised past
their 403. Generated requests include logout and logout-all, which end the
token's session; Schemathesis drops a cached token when an answer is 401 and
calls `get` again, so the run goes on with a fresh login.
"""

import json
import os
import urllib.request

import schemathesis

BASE_URL = os.environ["SESSIOND_URL"]
USERNAME = os.environ["SESSIOND_FUZZ_USER"]
PASSWORD = os.environ["SESSIOND_FUZZ_PASSWORD"]


def login() -> str:
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"{BASE_URL}/api/auth/login",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]["access_token"]


@schemathesis.auth(refresh_interval=60)
class AdminToken:
    def get(self, case, context):
        return login()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
