"""Schemathesis hooks for sessiond.

Authentication: every request carries a live access token of an
administrator (created by scripts/api-contract.sh with `sessiond user
create`), so the admin operations are exercised past their 403. Generated
requests include logout and logout-all, which end the token's session;
Schemathesis drops a cached token when an answer is 401 and calls `get`
again, so the run goes on with a fresh login.

Real ids: random UUIDs only ever reach the 404 of the operations that take
a session or user id, so their 2xx answers would never be checked against
the document. Every other generated request to such an operation gets ids
that exist instead: a fresh session of the admin (for the caller's own
session operations), a fresh session of a second user, `contract_victim`
(for the admin operations), or a fresh tracked session (for pause, resume
and end). What the generated request asks with them (say, suspending the
victim) is its own business: each substitution first undoes what could stop
the next one (the victim is reinstated before it logs in). Password
changes keep the admin's password (see `password_change`).
"""

import base64
import itertools
import json
import os
import urllib.error
import urllib.request

import schemathesis

BASE_URL = os.environ["SESSIOND_URL"]
ADMIN = (os.environ["SESSIOND_FUZZ_USER"], os.environ["SESSIOND_FUZZ_PASSWORD"])
VICTIM = ("contract_victim", "contract victim password")
# The introspection client of SESSIOND_INTROSPECTION_CLIENTS.
RS = (os.environ["SESSIOND_RS_ID"], os.environ["SESSIOND_RS_SECRET"])


def call(method, path, body=None, token=None):
    """The answer's `data`, or raises on anything but a 2xx."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{BASE_URL}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def login(credentials):
    username, password = credentials
    return call("POST", "/api/auth/login", {"username": username, "password": password})


@schemathesis.auth(refresh_interval=60)
class AdminToken:
    def get(self, case, context):
        return login(ADMIN)["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


_admin = None


def as_admin(method, path, body=None):
    """`call` with a kept admin login, logging in again when a generated
    logout has ended it (logins hash a password: keep them few)."""
    global _admin
    for attempt in (1, 2):
        if _admin is None:
            _admin = login(ADMIN)
        try:
            return call(method, path, body, token=_admin["access_token"])
        except urllib.error.HTTPError as e:
            if e.code != 401 or attempt == 2:
                raise
            _admin = None


_victim_id = None


def victim_session():
    """(victim's user id, a fresh session id of the victim)."""
    global _victim_id
    if _victim_id is None:
        try:
            _victim_id = call("POST", "/api/auth/register", {"username": VICTIM[0], "password": VICTIM[1]})["_id"]
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
            _victim_id = login(VICTIM)["user"]["_id"]
    # Undo a generated suspension, role change or password reset of an
    # earlier request.
    undo = {"status": "active", "role": "user", "password": VICTIM[1]}
    as_admin("PATCH", f"/api/admin/users/{_victim_id}", undo)
    return _victim_id, login(VICTIM)["session"]["id"]


def tracked_session(state):
    """A fresh tracked session of the admin, `active` or `paused`."""
    # The token's own user and app (`login` keeps the default app).
    user, app = ADMIN[0], "default"
    started = as_admin("POST", "/api/sessions/start", {"user": user, "app": app})
    body = {"user": user, "app": app, "session_id": started["session_id"]}
    if state == "paused":
        as_admin("POST", "/api/sessions/pause", body)
    return body


_turn = itertools.count()

# Operations whose ids are swapped in on every other call.
OWN_SESSION = {"/api/sessions/{id}", "/api/sessions/{id}/deactivate", "/api/v1/auth/users/me/sessions/{id}"}
TRACKED = {"/api/sessions/pause": "active", "/api/sessions/resume": "paused", "/api/sessions/end": "active"}


def introspection(case):
    """Every other introspection goes as the introspection client (HTTP
    Basic, the way resource servers call it) instead of as the admin, and
    asks about a live token, so that `active: true` answers are checked
    against the document too."""
    if next(_turn) % 2:
        return
    credentials = base64.b64encode(f"{RS[0]}:{RS[1]}".encode()).decode()
    case.headers = {**(case.headers or {}), "Authorization": f"Basic {credentials}"}
    if isinstance(case.body, dict):
        fresh = login(ADMIN)
        case.body = {**case.body, "token": fresh["access_token"] if next(_turn) % 2 else fresh["refresh_token"]}


def password_change(case):
    """Every other generated password change gives the admin's password as
    both the current and the new one, so it answers 2xx (and ends the
    admin's other sessions) while the password the hooks log in with stays
    the same; the others keep their generated (wrong) current password."""
    if next(_turn) % 2:
        return
    body = case.body if isinstance(case.body, dict) else {}
    case.body = {**body, "current_password": ADMIN[1], "new_password": ADMIN[1]}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    path = case.operation.path
    if path == "/oauth/introspect":
        introspection(case)
        return
    if path == "/api/auth/password":
        password_change(case)
        return
    if path not in OWN_SESSION and "{user_id}" not in path and path not in TRACKED:
        return
    if next(_turn) % 2:
        return
    if path in TRACKED:
        body = case.body if isinstance(case.body, dict) else {}
        real = tracked_session(TRACKED[path])
        # Keep the generated `time` (and anything else), with real ids.
        case.body = {**body, **real}
        if "time" in case.body and not isinstance(case.body["time"], str):
            del case.body["time"]
        return
    params = case.path_parameters or {}
    if "user_id" in params:
        user_id, session_id = victim_session()
        params["user_id"] = user_id
        if "id" in params:
            params["id"] = session_id
    elif "id" in params:
        params["id"] = login(ADMIN)["session"]["id"]
    case.path_parameters = params
