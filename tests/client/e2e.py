"""End to end through a client generated from openapi/openapi.json.

run by scripts/api-contract.sh, which generates the `sessiond_client`
package with openapi-python-client and puts it on PYTHONPATH. Nothing here
speaks HTTP by hand: if the document does not describe the API truly, the
generated client fails to build a request or to parse an answer.

Usage: python e2e.py BASE_URL
"""

import sys
import uuid
from datetime import datetime, timedelta, timezone

from sessiond_client import AuthenticatedClient, Client
from sessiond_client.api.analytics import end_session, get_heatmap, start_session
from sessiond_client.api.auth import get_me, login, logout, register
from sessiond_client.api.pages import get_page_stats, track_page
from sessiond_client.api.sessions import list_sessions
from sessiond_client.models import (
    ErrorEnvelope,
    HeatmapEnvelope,
    LoginEnvelope,
    LoginRequest,
    PageStatsEnvelope,
    PageTrackedEnvelope,
    RegisterRequest,
    ReportBody,
    SessionEndedEnvelope,
    SessionListEnvelope,
    SessionStartedEnvelope,
    StartBody,
    TrackBody,
    TransitionBody,
    UserEnvelope,
)


def check(response, status, model):
    """The answer has `status` and parsed as `model`; returns the model."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, model), (type(response.parsed), response.content)
    return response.parsed


def main(base_url):
    public = Client(base_url=base_url, raise_on_unexpected_status=True)
    username = f"client_{uuid.uuid4().hex[:12]}"
    password = "generated client pass"

    user = check(
        register.sync_detailed(
            client=public,
            body=RegisterRequest(username=username, password=password, email=f"{username}@example.com"),
        ),
        201,
        UserEnvelope,
    )
    assert user.success and user.data.username == username

    wrong = login.sync_detailed(client=public, body=LoginRequest(username=username, password="not it at all"))
    assert check(wrong, 401, ErrorEnvelope).error.code.value == "INVALID_CREDENTIALS"

    tokens = check(
        login.sync_detailed(client=public, body=LoginRequest(username=username, password=password)),
        200,
        LoginEnvelope,
    ).data
    assert tokens.token_type == "Bearer" and tokens.expires_in > 0
    me = AuthenticatedClient(base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True)
    assert check(get_me.sync_detailed(client=me), 200, UserEnvelope).data.username == username

    sessions = check(list_sessions.sync_detailed(client=me), 200, SessionListEnvelope).data
    assert [s.id for s in sessions] == [tokens.session.id], sessions
    assert sessions[0].is_current and sessions[0].is_active

    app = tokens.session.app
    tracked = check(
        track_page.sync_detailed(client=me, body=TrackBody(user=username, page="/pricing", timespent=42, app=app)),
        200,
        PageTrackedEnvelope,
    )
    assert tracked.data.page == "/pricing"
    stats = check(
        get_page_stats.sync_detailed(client=me, body=ReportBody(app=app, user=username)),
        200,
        PageStatsEnvelope,
    ).data
    pricing = stats.page_stats["/pricing"]
    assert (pricing.visits, pricing.total_time) == (1, "00:00:42"), stats.to_dict()

    # A tracked usage session an hour ago, 25 minutes long, on the heatmap.
    began = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    started = check(
        start_session.sync_detailed(client=me, body=StartBody(user=username, app=app, time=began)),
        200,
        SessionStartedEnvelope,
    ).data
    check(
        end_session.sync_detailed(
            client=me,
            body=TransitionBody(
                user=username, app=app, session_id=started.session_id, time=began + timedelta(minutes=25)
            ),
        ),
        200,
        SessionEndedEnvelope,
    )
    heatmap = check(
        get_heatmap.sync_detailed(client=me, body=ReportBody(app=app, user=username, tz="UTC")),
        200,
        HeatmapEnvelope,
    )
    assert heatmap.data.total_sessions == 1, heatmap.data.to_dict()
    assert heatmap.data.daily_sessions[began.date().isoformat()] == 1, heatmap.data.to_dict()
    assert heatmap.heatmap_data.to_dict() == heatmap.data.to_dict()

    out = logout.sync_detailed(client=me)
    assert out.status_code == 200, out.content
    gone = get_me.sync_detailed(client=me)
    assert check(gone, 401, ErrorEnvelope).error.code.value == "UNAUTHORIZED"
    print(f"generated client: register, login, sessions, page tracking, heatmap and logout work ({username})")


if __name__ == "__main__":
    main(sys.argv[1])
