//! The endpoints measured, the requests that call them, and the HTTP
//! steps that set a run up (sign-up, logins, probes).

use super::*;

/// The endpoints measured on each database, in the order they run (the
/// session listing before the endpoints that add sessions to the user).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Live,
    TokenInfo,
    Me,
    Sessions,
    Refresh,
    Login,
    Track,
    Heatmap,
    Verify,
    Introspect,
}

impl Endpoint {
    pub(super) const ALL: [Self; 10] = [
        Self::Live,
        Self::TokenInfo,
        Self::Verify,
        Self::Introspect,
        Self::Me,
        Self::Sessions,
        Self::Refresh,
        Self::Login,
        Self::Track,
        Self::Heatmap,
    ];

    /// The endpoint's name for `--only`.
    pub(super) fn part(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::TokenInfo => "token-info",
            Self::Me => "me",
            Self::Sessions => "sessions",
            Self::Refresh => "refresh",
            Self::Login => "login",
            Self::Track => "track",
            Self::Heatmap => "heatmap",
            Self::Verify => "verify",
            Self::Introspect => "introspect",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Live => "GET /health/live",
            Self::TokenInfo => "POST /api/auth/token-info",
            Self::Me => "GET /api/auth/me",
            Self::Sessions => "GET /api/sessions (20)",
            Self::Refresh => "POST /api/auth/refresh",
            Self::Login => "POST /api/auth/login",
            Self::Track => "POST /api/pages/track",
            Self::Heatmap => "POST /api/sessions/heatmap",
            Self::Verify => "GET /api/auth/verify",
            Self::Introspect => "POST /oauth/introspect",
        }
    }

    /// The least share of the bare endpoint's throughput the endpoint
    /// must reach, for the endpoints with such a target.
    pub(super) fn min_ratio(self) -> Option<f64> {
        match self {
            Self::TokenInfo => Some(TOKEN_INFO_MIN_RATIO),
            Self::Me => Some(ME_MIN_RATIO),
            Self::Verify => Some(VERIFY_MIN_RATIO),
            Self::Introspect => Some(INTROSPECT_MIN_RATIO),
            _ => None,
        }
    }

    /// The requests the connections cycle through; none for
    /// [`Endpoint::Refresh`], whose requests depend on the answers (see
    /// [`RefreshChain`]).
    pub(super) fn requests(self, addr: SocketAddr, token: &str) -> Vec<Vec<u8>> {
        let one = |r: Vec<u8>| vec![r];
        match self {
            Self::Live => one(client::request("GET", "/health/live", addr, None, None)),
            Self::TokenInfo => one(token_info(addr, token)),
            Self::Verify => {
                one(client::request("GET", "/api/auth/verify", addr, Some(token), None))
            }
            Self::Introspect => one(introspect(addr, token)),
            Self::Refresh => Vec::new(),
            Self::Me => one(client::request("GET", "/api/auth/me", addr, Some(token), None)),
            Self::Sessions => one(client::request("GET", "/api/sessions", addr, Some(token), None)),
            Self::Login => one(login_request(addr)),
            Self::Track => track_requests(addr),
            Self::Heatmap => {
                let body = json!({"user": USERNAME, "app": APP}).to_string();
                one(client::request(
                    "POST",
                    "/api/sessions/heatmap",
                    addr,
                    Some(token),
                    Some(&body),
                ))
            }
        }
    }
}

pub(super) fn token_info(addr: SocketAddr, token: &str) -> Vec<u8> {
    client::request("POST", "/api/auth/token-info", addr, Some(token), Some("{}"))
}

/// `POST /oauth/introspect` of `token`, as a resource server sends it:
/// HTTP Basic client credentials and a form body.
pub(super) fn introspect(addr: SocketAddr, token: &str) -> Vec<u8> {
    use base64::Engine as _;
    let (id, secret) = INTROSPECTION_CLIENT;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = format!("token={token}&token_type_hint=access_token");
    format!(
        "POST /oauth/introspect HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: sessiond-bench/0.1\r\n\
         Accept: application/json\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn login_request(addr: SocketAddr) -> Vec<u8> {
    let body = json!({"username": USERNAME, "password": PASSWORD, "app": APP}).to_string();
    client::request("POST", "/api/auth/login", addr, None, Some(&body))
}

/// Page visits of the benchmark user: 500 pages, 1–600 s each, varied so
/// that the server's aggregates see many keys (no token: public tracking).
pub(super) fn track_requests(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut rng = crate::dataset::Rng::new(0x7ac6);
    (0..TRACK_VARIETY)
        .map(|_| {
            let body = json!({
                "user": USERNAME,
                "page": format!("/p/{}", rng.below(500)),
                "timespent": 1 + rng.below(600),
                "app": APP,
            });
            client::request("POST", "/api/pages/track", addr, None, Some(&body.to_string()))
        })
        .collect()
}

/// A connection's own refresh-token chain: every request presents the
/// refresh token the previous answer returned (tokens rotate on each use,
/// and an old one presented after the grace window revokes the session).
pub(super) struct RefreshChain {
    pub(super) addr: SocketAddr,
    pub(super) request: Vec<u8>,
}

impl RefreshChain {
    pub(super) fn new(addr: SocketAddr, refresh_token: &str) -> Self {
        let mut chain = Self { addr, request: Vec::new() };
        chain.present(refresh_token);
        chain
    }

    pub(super) fn present(&mut self, refresh_token: &str) {
        let body = json!({ "refresh_token": refresh_token }).to_string();
        self.request = client::request("POST", "/api/auth/refresh", self.addr, None, Some(&body));
    }
}

impl Script for RefreshChain {
    fn next_request(&mut self) -> Option<&[u8]> {
        Some(&self.request)
    }

    fn answered(&mut self, response: &Response) {
        // A failed answer keeps the current token: presenting it again
        // within the grace window still works, and the error is counted.
        if response.is_success()
            && let Some(next) = json_str(&response.body, "/data/refresh_token")
        {
            self.present(&next);
        }
    }
}

pub(super) fn json_str(body: &[u8], pointer: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

/// Registers the benchmark user and logs in [`SESSIONS_PER_USER`] times
/// (so that listing sessions lists that many); returns the last access token.
pub(super) async fn sign_up(addr: SocketAddr) -> Result<String, String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let credentials = json!({ "username": USERNAME, "password": PASSWORD }).to_string();
    let register = client::request("POST", "/api/auth/register", addr, None, Some(&credentials));
    let resp =
        conn.roundtrip(&register).await.map_err(|e| format!("POST /api/auth/register: {e}"))?;
    if resp.status != 201 {
        return Err(format!(
            "POST /api/auth/register answered {} (want 201): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    for _ in 1..SESSIONS_PER_USER {
        login(addr).await?;
    }
    login(addr).await
}

/// Logs the benchmark user in once; its access token.
pub(super) async fn login(addr: SocketAddr) -> Result<String, String> {
    login_json(addr).await.and_then(|v| {
        v.pointer("/data/access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("POST /api/auth/login: no data.access_token in {v}"))
    })
}

pub(super) async fn login_json(addr: SocketAddr) -> Result<Value, String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let resp = conn
        .roundtrip(&login_request(addr))
        .await
        .map_err(|e| format!("POST /api/auth/login: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "POST /api/auth/login answered {} (want 200): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| format!("POST /api/auth/login: body is not JSON: {e}"))
}

/// `count` logins, `parallel` at a time (the server hashes on every core);
/// their refresh tokens.
pub(super) async fn login_many(
    addr: SocketAddr,
    count: usize,
    parallel: usize,
) -> Result<Vec<String>, String> {
    let local = tokio::task::LocalSet::new();
    let parallel = parallel.clamp(1, count.max(1));
    let handles: Vec<_> = (0..parallel)
        .map(|i| {
            // Worker i does logins i, i + parallel, …
            let mine = (i..count).step_by(parallel).count();
            local.spawn_local(async move {
                let mut tokens = Vec::with_capacity(mine);
                for _ in 0..mine {
                    let v = login_json(addr).await?;
                    let t = v.pointer("/data/refresh_token").and_then(Value::as_str).ok_or_else(
                        || format!("POST /api/auth/login: no data.refresh_token in {v}"),
                    )?;
                    tokens.push(t.to_owned());
                }
                Ok::<_, String>(tokens)
            })
        })
        .collect();
    local
        .run_until(async move {
            let mut all = Vec::with_capacity(count);
            for h in handles {
                all.extend(h.await.map_err(|e| format!("a login task failed: {e}"))??);
            }
            Ok(all)
        })
        .await
}

/// Sends one request and complains unless it succeeds.
pub(super) async fn probe(addr: SocketAddr, request: &[u8]) -> Result<(), String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| e.to_string())?;
    let resp = conn.roundtrip(request).await.map_err(|e| e.to_string())?;
    if resp.is_success() {
        Ok(())
    } else {
        Err(format!("{}: {}", resp.status, resp.body_snippet()))
    }
}
