//! Configuration from the environment (and a `.env` file when present).
//!
//! Every variable is read and checked at start-up, even those a feature uses
//! later, so a typo stops the server at once with one line naming the
//! variable instead of surfacing hours later.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A CIDR block of trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            addr.trim().parse().map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// Whether new accounts may register themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Only `sessiond user create` makes accounts.
    Closed,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Listen address.
    pub bind: SocketAddr,
    /// HS256 secret; when absent, keys of `jwt_alg` are generated and kept
    /// in the database.
    pub jwt_secret: Option<String>,
    /// The signing algorithm: HS256 with a secret, else EdDSA by default.
    pub jwt_alg: tokens::SigningAlg,
    /// Rotate the signing keys when the current one is this many days old;
    /// 0 = never on a schedule.
    pub key_rotation_days: u64,
    /// Seals private signing keys at rest; `None`: stored as they are.
    pub key_encryption_key: Option<tokens::KeyVault>,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Absolute session lifetime.
    pub session_lifetime_secs: u64,
    /// Idle timeout, 0 = off.
    pub session_idle_timeout_secs: u64,
    /// Refresh-token reuse grace window.
    pub refresh_grace_secs: u64,
    /// Whether the bearer-only refresh (no refresh token) is served.
    pub bearer_refresh: bool,
    /// How long ended sessions are kept before purging.
    pub session_retention_secs: u64,
    /// Inactivity after which tracked sessions are closed.
    pub tracking_idle_timeout_secs: u64,
    /// How often the sweepers run.
    pub sweep_interval_secs: u64,
    /// How often pending `last_activity` marks are written.
    pub activity_flush_secs: u64,
    /// Self-registration.
    pub registration: Registration,
    /// Whether `/api/pages/track` works without a token.
    pub public_tracking: bool,
    /// Whether the public analytics endpoints are on.
    pub public_analytics: bool,
    /// Proxies whose forwarded client address is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// MaxMind-format GeoIP database.
    pub geoip_db: Option<String>,
    /// Rate limiting on/off.
    pub rate_limit_enabled: bool,
    /// Requests per minute per IP.
    pub rate_limit_ip_per_minute: u32,
    /// Requests per hour per user.
    pub rate_limit_user_per_hour: u32,
    /// Logout-all calls per minute.
    pub rate_limit_logout_all_per_minute: u32,
    /// Failed logins of one account from one address before that pair
    /// locks.
    pub login_max_failures: u32,
    /// Failed logins of one account, across addresses it has not logged
    /// in from within the retention period, before it locks for them.
    pub login_account_max_failures: u32,
    /// Failed logins per IP before a lock.
    pub login_ip_max_failures: u32,
    /// First lock duration (doubles, at most 900 s).
    pub login_lockout_secs: u64,
    /// Database timeout.
    pub db_timeout_secs: u64,
    /// Database pool size.
    pub db_max_connections: u32,
    /// HTTP worker threads.
    pub workers: usize,
    /// How long requests in flight may take to finish on SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// The cookie forward auth reads an access token from when no bearer
    /// token came; `None`: bearer tokens only.
    pub verify_cookie: Option<String>,
    /// The clients that may introspect tokens with HTTP Basic.
    pub introspection_clients: http_api::IntrospectionClients,
}

/// Every variable sessiond reads; others with the `SESSIOND_` prefix are
/// reported as probable typos.
pub const KNOWN: &[&str] = &[
    "SESSIOND_BIND",
    "SESSIOND_JWT_SECRET",
    "SESSIOND_JWT_ALG",
    "SESSIOND_KEY_ROTATION_DAYS",
    "SESSIOND_KEY_ENCRYPTION_KEY",
    "SESSIOND_ACCESS_TOKEN_TTL_SECS",
    "SESSIOND_SESSION_LIFETIME_SECS",
    "SESSIOND_SESSION_IDLE_TIMEOUT_SECS",
    "SESSIOND_REFRESH_GRACE_SECS",
    "SESSIOND_BEARER_REFRESH",
    "SESSIOND_SESSION_RETENTION_SECS",
    "SESSIOND_TRACKING_IDLE_TIMEOUT_SECS",
    "SESSIOND_SWEEP_INTERVAL_SECS",
    "SESSIOND_ACTIVITY_FLUSH_SECS",
    "SESSIOND_REGISTRATION",
    "SESSIOND_PUBLIC_TRACKING",
    "SESSIOND_PUBLIC_ANALYTICS",
    "SESSIOND_TRUSTED_PROXIES",
    "SESSIOND_GEOIP_DB",
    "SESSIOND_RATE_LIMIT_ENABLED",
    "SESSIOND_RATE_LIMIT_IP_PER_MINUTE",
    "SESSIOND_RATE_LIMIT_USER_PER_HOUR",
    "SESSIOND_RATE_LIMIT_LOGOUT_ALL_PER_MINUTE",
    "SESSIOND_LOGIN_MAX_FAILURES",
    "SESSIOND_LOGIN_ACCOUNT_MAX_FAILURES",
    "SESSIOND_LOGIN_IP_MAX_FAILURES",
    "SESSIOND_LOGIN_LOCKOUT_SECS",
    "SESSIOND_DB_TIMEOUT_SECS",
    "SESSIOND_DB_MAX_CONNECTIONS",
    "SESSIOND_WORKERS",
    "SESSIOND_SHUTDOWN_TIMEOUT_SECS",
    "SESSIOND_LOG_FORMAT",
    "SESSIOND_VERIFY_COOKIE",
    "SESSIOND_INTROSPECTION_CLIENTS",
];

/// Shortest configured JWT secret accepted: HS256 wants 256 bits of key.
pub const MIN_SECRET_LEN: usize = 32;

/// A configuration problem: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.problem)
    }
}

impl std::error::Error for ConfigError {}

struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn raw(&self, var: &'static str) -> Option<&str> {
        self.vars.get(var).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            None => Ok(default),
            Some(s) => {
                s.parse().map_err(|_| ConfigError { var, problem: format!("{s:?} is not {what}") })
            }
        }
    }

    fn secs(&self, var: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        let v = self.parse(var, default, "a whole number of seconds")?;
        if v < min {
            return Err(ConfigError { var, problem: format!("must be at least {min}") });
        }
        Ok(v)
    }

    fn count(&self, var: &'static str, default: u32) -> Result<u32, ConfigError> {
        let v = self.parse(var, default, "a positive whole number")?;
        if v == 0 {
            return Err(ConfigError { var, problem: "must be at least 1".into() });
        }
        Ok(v)
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(s) => Err(ConfigError { var, problem: format!("{s:?} is not true or false") }),
        }
    }

    fn choice<T: Copy>(
        &self,
        var: &'static str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(s) = self.raw(var) else { return Ok(default) };
        options.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|(_, v)| *v).ok_or_else(
            || {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                ConfigError { var, problem: format!("{s:?} is not one of {}", names.join(", ")) }
            },
        )
    }
}

impl Config {
    /// Reads the configuration from a snapshot of the environment.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let r = Reader { vars };
        let database_url = r.raw("DATABASE_URL").unwrap_or("sqlite://sessiond.db").to_owned();
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p))
        {
            return Err(ConfigError {
                var: "DATABASE_URL",
                problem: "must start with sqlite:// or postgres://".into(),
            });
        }
        let jwt_secret = r.raw("SESSIOND_JWT_SECRET").map(str::to_owned);
        if jwt_secret.as_ref().is_some_and(|s| s.len() < MIN_SECRET_LEN) {
            return Err(ConfigError {
                var: "SESSIOND_JWT_SECRET",
                problem: format!("must be at least {MIN_SECRET_LEN} bytes long"),
            });
        }
        let default_alg = if jwt_secret.is_some() {
            tokens::SigningAlg::HS256
        } else {
            tokens::SigningAlg::EdDSA
        };
        let jwt_alg = match r.raw("SESSIOND_JWT_ALG") {
            None => default_alg,
            Some(s) => s
                .parse::<tokens::SigningAlg>()
                .map_err(|problem| ConfigError { var: "SESSIOND_JWT_ALG", problem })?,
        };
        if jwt_secret.is_some() && jwt_alg != tokens::SigningAlg::HS256 {
            return Err(ConfigError {
                var: "SESSIOND_JWT_SECRET",
                problem: format!(
                    "is an HS256 secret and cannot be used with SESSIOND_JWT_ALG={jwt_alg}; \
                     unset it to have {jwt_alg} keys generated and kept in the database"
                ),
            });
        }
        // The value never appears in an error: only what is wrong with it.
        let key_encryption_key = r
            .raw("SESSIOND_KEY_ENCRYPTION_KEY")
            .map(tokens::KeyVault::parse)
            .transpose()
            .map_err(|problem| ConfigError { var: "SESSIOND_KEY_ENCRYPTION_KEY", problem })?;
        let trusted_proxies = match r.raw("SESSIOND_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.parse::<Cidr>())
                .collect::<Result<_, _>>()
                .map_err(|problem| ConfigError { var: "SESSIOND_TRUSTED_PROXIES", problem })?,
        };
        let verify_cookie = r.raw("SESSIOND_VERIFY_COOKIE").map(str::to_owned);
        if let Some(name) = &verify_cookie {
            // RFC 6265's cookie-name is an RFC 7230 token.
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if !name.chars().all(token) {
                return Err(ConfigError {
                    var: "SESSIOND_VERIFY_COOKIE",
                    problem: format!("{name:?} is not a valid cookie name"),
                });
            }
        }
        let introspection_clients = http_api::IntrospectionClients::parse(
            r.raw("SESSIOND_INTROSPECTION_CLIENTS").unwrap_or(""),
        )
        .map_err(|problem| ConfigError { var: "SESSIOND_INTROSPECTION_CLIENTS", problem })?;
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Ok(Self {
            database_url,
            bind: r.parse(
                "SESSIOND_BIND",
                SocketAddr::from(([127, 0, 0, 1], 8000)),
                "a host:port address",
            )?,
            jwt_secret,
            jwt_alg,
            key_rotation_days: r.parse(
                "SESSIOND_KEY_ROTATION_DAYS",
                0,
                "a whole number of days (0 = off)",
            )?,
            key_encryption_key,
            access_token_ttl_secs: r.secs("SESSIOND_ACCESS_TOKEN_TTL_SECS", 900, 1)?,
            session_lifetime_secs: r.secs("SESSIOND_SESSION_LIFETIME_SECS", 86_400, 1)?,
            session_idle_timeout_secs: r.secs("SESSIOND_SESSION_IDLE_TIMEOUT_SECS", 0, 0)?,
            refresh_grace_secs: r.secs("SESSIOND_REFRESH_GRACE_SECS", 10, 0)?,
            bearer_refresh: r.flag("SESSIOND_BEARER_REFRESH", true)?,
            session_retention_secs: r.secs("SESSIOND_SESSION_RETENTION_SECS", 2_592_000, 0)?,
            tracking_idle_timeout_secs: r.secs("SESSIOND_TRACKING_IDLE_TIMEOUT_SECS", 43_200, 1)?,
            sweep_interval_secs: r.secs("SESSIOND_SWEEP_INTERVAL_SECS", 60, 1)?,
            activity_flush_secs: r.secs("SESSIOND_ACTIVITY_FLUSH_SECS", 2, 1)?,
            registration: r.choice(
                "SESSIOND_REGISTRATION",
                Registration::Open,
                &[("open", Registration::Open), ("closed", Registration::Closed)],
            )?,
            public_tracking: r.flag("SESSIOND_PUBLIC_TRACKING", true)?,
            public_analytics: r.flag("SESSIOND_PUBLIC_ANALYTICS", true)?,
            trusted_proxies,
            geoip_db: r.raw("SESSIOND_GEOIP_DB").map(str::to_owned),
            rate_limit_enabled: r.flag("SESSIOND_RATE_LIMIT_ENABLED", true)?,
            rate_limit_ip_per_minute: r.count("SESSIOND_RATE_LIMIT_IP_PER_MINUTE", 100)?,
            rate_limit_user_per_hour: r.count("SESSIOND_RATE_LIMIT_USER_PER_HOUR", 1000)?,
            rate_limit_logout_all_per_minute: r
                .count("SESSIOND_RATE_LIMIT_LOGOUT_ALL_PER_MINUTE", 60)?,
            login_max_failures: r.count("SESSIOND_LOGIN_MAX_FAILURES", 5)?,
            login_account_max_failures: r.count("SESSIOND_LOGIN_ACCOUNT_MAX_FAILURES", 50)?,
            login_ip_max_failures: r.count("SESSIOND_LOGIN_IP_MAX_FAILURES", 20)?,
            login_lockout_secs: r.secs("SESSIOND_LOGIN_LOCKOUT_SECS", 60, 1)?,
            db_timeout_secs: r.secs("SESSIOND_DB_TIMEOUT_SECS", 2, 1)?,
            db_max_connections: r.count("SESSIOND_DB_MAX_CONNECTIONS", 16)?,
            workers: r.parse::<usize>("SESSIOND_WORKERS", cores, "a positive whole number")?.max(1),
            shutdown_timeout_secs: r.secs("SESSIOND_SHUTDOWN_TIMEOUT_SECS", 10, 0)?,
            log_format: r.choice(
                "SESSIOND_LOG_FORMAT",
                LogFormat::Text,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?,
            verify_cookie,
            introspection_clients,
        })
    }

    /// `SESSIOND_*` variables that sessiond does not know: probably typos.
    pub fn unknown_vars(vars: &BTreeMap<String, String>) -> Vec<String> {
        vars.keys()
            .filter(|k| k.starts_with("SESSIOND_") && !KNOWN.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::from_vars(&BTreeMap::new()).expect("defaults are valid");
        assert_eq!(c.database_url, "sqlite://sessiond.db");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert_eq!((c.access_token_ttl_secs, c.session_lifetime_secs), (900, 86_400));
        assert_eq!((c.session_idle_timeout_secs, c.refresh_grace_secs), (0, 10));
        assert_eq!((c.session_retention_secs, c.tracking_idle_timeout_secs), (2_592_000, 43_200));
        assert_eq!(c.registration, Registration::Open);
        assert!(c.public_tracking && c.public_analytics && c.rate_limit_enabled);
        assert!(c.bearer_refresh);
        assert_eq!((c.rate_limit_ip_per_minute, c.rate_limit_user_per_hour), (100, 1000));
        assert_eq!(c.rate_limit_logout_all_per_minute, 60);
        assert_eq!(
            (c.login_max_failures, c.login_ip_max_failures, c.login_lockout_secs),
            (5, 20, 60)
        );
        assert_eq!(c.login_account_max_failures, 50);
        assert_eq!(c.db_timeout_secs, 2);
        assert_eq!((c.activity_flush_secs, c.shutdown_timeout_secs), (2, 10));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.verify_cookie, None);
        assert!(c.introspection_clients.is_empty());
    }

    #[test]
    fn token_endpoint_settings() {
        let c = Config::from_vars(&vars(&[
            ("SESSIOND_VERIFY_COOKIE", "sessiond_at"),
            ("SESSIOND_INTROSPECTION_CLIENTS", "api:s3cret, gateway:other"),
        ]))
        .expect("valid");
        assert_eq!(c.verify_cookie.as_deref(), Some("sessiond_at"));
        assert!(c.introspection_clients.check("gateway", "other"));
        assert!(!c.introspection_clients.check("api", "other"));
        let e = Config::from_vars(&vars(&[("SESSIOND_INTROSPECTION_CLIENTS", "api:x,broken")]))
            .expect_err("malformed");
        assert_eq!(
            e.to_string(),
            "invalid configuration: SESSIOND_INTROSPECTION_CLIENTS: entry 2 is not of the form id:secret"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("SESSIOND_ACCESS_TOKEN_TTL_SECS", "ten"),
            ("SESSIOND_ACCESS_TOKEN_TTL_SECS", "0"),
            ("SESSIOND_BIND", "localhost"),
            ("SESSIOND_REGISTRATION", "maybe"),
            ("SESSIOND_PUBLIC_TRACKING", "yep"),
            ("SESSIOND_BEARER_REFRESH", "sometimes"),
            ("SESSIOND_JWT_SECRET", "short"),
            ("SESSIOND_JWT_ALG", "none"),
            ("SESSIOND_JWT_ALG", "HS512"),
            ("SESSIOND_KEY_ROTATION_DAYS", "-1"),
            ("SESSIOND_KEY_ENCRYPTION_KEY", "abcd"),
            ("SESSIOND_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("SESSIOND_LOG_FORMAT", "xml"),
            ("SESSIOND_LOGIN_ACCOUNT_MAX_FAILURES", "0"),
            ("SESSIOND_LOGIN_ACCOUNT_MAX_FAILURES", "many"),
            ("SESSIOND_VERIFY_COOKIE", "my cookie"),
            ("SESSIOND_VERIFY_COOKIE", "a=b"),
            ("SESSIOND_INTROSPECTION_CLIENTS", "gateway"),
            ("SESSIOND_INTROSPECTION_CLIENTS", "gw:one,gw:two"),
            ("DATABASE_URL", "mysql://x"),
        ];
        for (var, value) in cases {
            let e = Config::from_vars(&vars(&[(var, value)])).expect_err(var);
            assert_eq!(e.var, var);
            assert!(e.to_string().contains(var) && !e.to_string().contains('\n'));
        }
    }

    #[test]
    fn signing_settings() {
        let c = Config::from_vars(&BTreeMap::new()).expect("defaults");
        assert_eq!(c.jwt_alg, tokens::SigningAlg::EdDSA);
        assert_eq!(c.key_rotation_days, 0);
        assert!(c.key_encryption_key.is_none());
        let secret = "0123456789abcdef0123456789abcdef";
        let c = Config::from_vars(&vars(&[("SESSIOND_JWT_SECRET", secret)])).expect("secret");
        assert_eq!(c.jwt_alg, tokens::SigningAlg::HS256);
        let c = Config::from_vars(&vars(&[
            ("SESSIOND_JWT_ALG", "RS256"),
            ("SESSIOND_KEY_ROTATION_DAYS", "30"),
            ("SESSIOND_KEY_ENCRYPTION_KEY", &"ab".repeat(32)),
        ]))
        .expect("valid");
        assert_eq!((c.jwt_alg, c.key_rotation_days), (tokens::SigningAlg::RS256, 30));
        assert!(c.key_encryption_key.is_some());
        // A secret with an asymmetric algorithm names the secret.
        let e = Config::from_vars(&vars(&[
            ("SESSIOND_JWT_SECRET", secret),
            ("SESSIOND_JWT_ALG", "EdDSA"),
        ]))
        .expect_err("conflict");
        assert_eq!(e.var, "SESSIOND_JWT_SECRET");
        assert!(!e.to_string().contains(secret));
        // A bad encryption key is not repeated in the message.
        let e = Config::from_vars(&vars(&[("SESSIOND_KEY_ENCRYPTION_KEY", "not-a-key-xyz")]))
            .expect_err("bad key");
        assert_eq!(e.var, "SESSIOND_KEY_ENCRYPTION_KEY");
        assert!(!e.to_string().contains("not-a-key-xyz"));
    }

    #[test]
    fn trusted_proxies_parse_as_cidr_lists() {
        let c = Config::from_vars(&vars(&[(
            "SESSIOND_TRUSTED_PROXIES",
            "10.0.0.0/8, 127.0.0.1,::1/128",
        )]))
        .expect("valid list");
        assert_eq!(c.trusted_proxies.len(), 3);
        assert_eq!(c.trusted_proxies[1].prefix, 32);
    }

    #[test]
    fn unknown_prefixed_names_are_reported() {
        let v =
            vars(&[("SESSIOND_BIND", "127.0.0.1:1"), ("SESSIOND_BINDD", "x"), ("PATH", "/bin")]);
        assert_eq!(Config::unknown_vars(&v), vec!["SESSIOND_BINDD".to_owned()]);
    }
}
