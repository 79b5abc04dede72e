//! `sessiond`: the session and token server. Reads its configuration,
//! migrates the database, wires the stores into the use cases and serves the
//! HTTP API. Also the operator's command line (`migrate`, `openapi`, `user`).

mod background;
mod config;
mod geoip;
mod hash_pool;
mod malloc;
mod output;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::Arc;

use accounts::{Role, UserStatus};
use anyhow::Context as _;
use auth::{AuthError, AuthService, RegisterInput, Settings};
use clap::{Args, Parser, Subcommand};
use config::{Config, Registration};
use kernel::{Duration, SystemClock};
use output::{listening_line, say};
use sessions::Lifetimes;
use store::{Store, StoreOptions};
use tokens::{KeyRing, TokenCodec};

/// The issuer written into and required from every access token.
const ISSUER: &str = "sessiond";

#[derive(Parser)]
#[command(name = "sessiond", version, about = "Session and token server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document to standard output.
    Openapi,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the keys access tokens are signed with.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every signing key: kid, algorithm, state (next, current,
    /// retired), when it was created, became current, retired, and until
    /// when a retired key still verifies. No private material.
    List,
    /// Rotate: the next key signs from now on, a new next key is published,
    /// the current key retires (and verifies until its tokens expire).
    /// Every running instance signs with the new key within one second.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account (the way to make the first admin).
    Create {
        /// Username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Role (`user` or `admin`, or any role name).
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// Suspend an account: it cannot log in and its sessions end.
    Suspend {
        /// Username.
        #[arg(long)]
        username: String,
    },
    /// Reinstate a suspended account.
    Activate {
        /// Username.
        #[arg(long)]
        username: String,
    },
    /// Change an account's role (`admin` to promote, `user` to demote). The
    /// last active admin cannot be demoted.
    SetRole {
        /// Username.
        #[arg(long)]
        username: String,
        /// Role (`user` or `admin`, or any role name).
        #[arg(long)]
        role: String,
    },
    /// Set an account's password (the registration rules apply); every
    /// session of the account ends.
    SetPassword {
        /// Username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArg,
    },
}

/// A password given on the command line or, better, on standard input.
#[derive(Args)]
struct PasswordArg {
    /// Password (prefer --password-stdin: arguments show up in `ps`).
    #[arg(long, required_unless_present = "password_stdin", conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input (trailing newline stripped).
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArg {
    /// The password, read from standard input when asked to.
    fn read(self) -> anyhow::Result<String> {
        match (self.password, self.password_stdin) {
            (_, true) => read_password_stdin(),
            (Some(p), false) => Ok(p),
            (None, false) => anyhow::bail!("--password or --password-stdin is required"),
        }
    }
}

fn main() -> std::process::ExitCode {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let help = output::configuration_help();
    let matches = Cli::command()
        .after_help(help.clone())
        .mut_subcommand("serve", |serve| serve.after_help(help))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(Command::Openapi) = cli.command {
        say(&http_api::openapi_json());
        return std::process::ExitCode::SUCCESS;
    }
    if matches!(cli.command, None | Some(Command::Serve)) {
        malloc::reexec_tuned();
    }
    // A missing .env is normal; a broken one is worth saying.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("sessiond: cannot read .env: {e}");
        return std::process::ExitCode::from(2);
    }
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let config = match Config::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sessiond: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    output::init_logging(config.log_format);
    for var in Config::unknown_vars(&vars) {
        tracing::warn!("unknown configuration variable {var} is ignored");
    }
    match run(cli.command.unwrap_or(Command::Serve), config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessiond: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    match command {
        // Handled in `main` before configuration is read, so that it needs
        // no database; kept here for completeness.
        Command::Openapi => {
            say(&http_api::openapi_json());
            Ok(())
        }
        Command::Migrate => {
            say("sessiond: database is migrated\n");
            Ok(())
        }
        Command::Serve => serve(config, store),
        Command::User { command } => user_command(command, &config, store),
        Command::Keys { command } => keys_command(command, &config, store),
    }
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        timeout: std::time::Duration::from_secs(config.db_timeout_secs),
    };
    let store =
        Store::connect(&config.database_url, &options).context("cannot open the database")?;
    store.migrate().context("cannot migrate the database")?;
    Ok(store)
}

fn auth_service(config: &Config, store: &Store) -> anyhow::Result<AuthService> {
    let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    let ttl = secs(config.access_token_ttl_secs);
    // A configured secret signs alone (HS256, as before keys had ids);
    // otherwise the keys of the database, created at the first start.
    let (codec, ring) = match &config.jwt_secret {
        Some(secret) => (TokenCodec::new(secret.as_bytes(), ISSUER, ttl), None),
        None => {
            let ring = KeyRing::open(
                Arc::new(store.clone()),
                config.key_encryption_key.clone(),
                config.jwt_alg,
                ISSUER,
                ttl,
                kernel::OffsetDateTime::now_utc(),
            )
            .context("cannot load the signing keys")?;
            (ring.codec().clone(), Some(Arc::new(ring)))
        }
    };
    let locator: Arc<dyn sessions::Locator> = match &config.geoip_db {
        Some(path) => Arc::new(geoip::MaxMindLocator::open(std::path::Path::new(path))?),
        None => Arc::new(sessions::NoLocator),
    };
    let ports = store.auth_ports(locator, Arc::new(SystemClock));
    let settings = Settings {
        lifetimes: Lifetimes {
            absolute: secs(config.session_lifetime_secs),
            idle: (config.session_idle_timeout_secs > 0)
                .then(|| secs(config.session_idle_timeout_secs)),
        },
        refresh_grace: secs(config.refresh_grace_secs),
        bearer_refresh: config.bearer_refresh,
        registration_open: config.registration == Registration::Open,
        throttle: auth::ThrottlePolicy {
            pair_max_failures: config.login_max_failures,
            ip_max_failures: config.login_ip_max_failures,
            account_wide_max_failures: config.login_account_max_failures,
            lockout: secs(config.login_lockout_secs),
            // SPEC: doubling, at most 900 s (or the first lock, when that
            // is configured longer).
            max_lockout: secs(config.login_lockout_secs.max(900)),
            memory: auth::DEFAULT_MEMORY.max(secs(config.login_lockout_secs.saturating_mul(2))),
            // An address stays the account's own as long as its sessions
            // are kept.
            known_for: secs(config.session_retention_secs),
        },
    };
    // Hashes run on low-priority threads, one per core: a login flood queues
    // there instead of starving the requests that only check a token.
    let hasher = hash_pool::password_hasher(Arc::new(hash_pool::HashPool::per_core()));
    let auth = AuthService::new(ports, codec, hasher, settings);
    if let Some(ring) = ring {
        auth.attach_key_ring(ring);
    }
    Ok(auth)
}

fn keys_command(command: KeysCommand, config: &Config, store: Store) -> anyhow::Result<()> {
    let auth = auth_service(config, &store)?;
    if let KeysCommand::Rotate = command {
        auth.rotate_keys_now().map_err(|e| anyhow::anyhow!(e))?;
        say("sessiond: signing keys rotated\n");
    }
    let keys = auth.signing_keys().map_err(|e| anyhow::anyhow!(e))?;
    say(&output::key_table(&keys));
    Ok(())
}

struct StoreProbe(Store);

impl http_api::DatabaseProbe for StoreProbe {
    fn check(&self) -> anyhow::Result<()> {
        self.0.probe_write()
    }

    fn pool(&self) -> Option<kernel::PoolStats> {
        Some(self.0.pool_stats())
    }
}

fn serve(config: Config, store: Store) -> anyhow::Result<()> {
    let auth = Arc::new(auth_service(&config, &store)?);
    let listener = std::net::TcpListener::bind(config.bind)
        .with_context(|| format!("cannot listen on {} (SESSIOND_BIND)", config.bind))?;
    let addr = listener.local_addr()?;
    let trusted_proxies =
        http_api::TrustedProxies::new(config.trusted_proxies.iter().map(|c| (c.addr, c.prefix)));
    // Page visits are group-committed by the store's batcher threads.
    let pages = Arc::new(store::PageBatcher::start(Arc::new(store.clone()), Arc::new(SystemClock)));
    let analytics = Arc::new(
        analytics::AnalyticsService::new(
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            analytics::AnalyticsSettings {
                public_tracking: config.public_tracking,
                public_analytics: config.public_analytics,
                idle_timeout: Duration::seconds(
                    i64::try_from(config.tracking_idle_timeout_secs).unwrap_or(i64::MAX),
                ),
            },
        )
        .with_page_writer(pages.clone()),
    );
    let state = http_api::ApiState {
        auth,
        analytics,
        database: Arc::new(StoreProbe(store.clone())),
        trusted_proxies,
        rate_limits: Arc::new(http_api::RateLimits::new(http_api::RateLimitConfig {
            enabled: config.rate_limit_enabled,
            ip_per_minute: config.rate_limit_ip_per_minute,
            user_per_hour: config.rate_limit_user_per_hour,
            logout_all_per_minute: config.rate_limit_logout_all_per_minute,
        })),
        metrics: Arc::new(http_api::Metrics::new()),
        token_endpoints: Arc::new(http_api::TokenEndpoints {
            verify_cookie: config.verify_cookie.clone(),
            introspection_clients: config.introspection_clients.clone(),
        }),
    };
    // Other processes sharing a PostgreSQL database tell this one when a
    // session or user changes, so their revocations apply here at once.
    let invalidations = {
        let auth = state.auth.clone();
        store.listen_invalidations(move |what| auth.invalidate(what))?
    };
    let workers = config.workers;
    let log_format = config.log_format;
    let shutdown_timeout = std::time::Duration::from_secs(config.shutdown_timeout_secs);
    let retention =
        Duration::seconds(i64::try_from(config.session_retention_secs).unwrap_or(i64::MAX));
    let background = background::Background::start(
        state.auth.clone(),
        background::Tracking { service: state.analytics.clone(), pages },
        state.rate_limits.clone(),
        store.clone(),
        retention,
        std::time::Duration::from_secs(config.sweep_interval_secs),
        std::time::Duration::from_secs(config.activity_flush_secs),
    )
    .with_key_housekeeping((config.key_rotation_days > 0).then(|| {
        // A century is "never" and keeps date arithmetic in range.
        Duration::days(i64::try_from(config.key_rotation_days.min(36_500)).unwrap_or(36_500))
    }));
    let served = actix_web::rt::System::new().block_on(async move {
        let server = http_api::server(state, listener, workers, shutdown_timeout)?;
        // Tests and scripts wait for this line (port 0 picks a free port).
        say(&listening_line(log_format, &format!("http://{addr}")));
        tracing::info!(%addr, backend = ?store.backend(), "sessiond listening");
        // actix stops gracefully on SIGINT/SIGTERM: it stops accepting,
        // and requests in flight finish (within the shutdown timeout).
        server.await
    });
    background.stop();
    if let Some(listener) = invalidations {
        listener.stop();
    }
    served?;
    Ok(())
}

fn user_command(command: UserCommand, config: &Config, store: Store) -> anyhow::Result<()> {
    let auth = auth_service(config, &store)?;
    let describe = |e: AuthError| match e {
        AuthError::Invalid(v) => anyhow::anyhow!("invalid input: {v}"),
        AuthError::UserNotFound => anyhow::anyhow!("no such user"),
        AuthError::LastAdmin => anyhow::anyhow!(
            "this is the last active admin and cannot be demoted or suspended; \
             make another user an admin first (sessiond user set-role --role admin)"
        ),
        other => anyhow::anyhow!(other),
    };
    match command {
        UserCommand::Create { username, password, email, name, role } => {
            let password = password.read()?;
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("invalid --role: {e}"))?;
            let user = auth
                .create_user(RegisterInput { username, password, email, name }, role)
                .map_err(describe)?;
            say(&format!(
                "created user {} ({}, {}) with role {}\n",
                user.username, user.id, user.user_code, user.role
            ));
        }
        UserCommand::Suspend { username } => {
            let user = auth.set_status(&username, UserStatus::Suspended).map_err(describe)?;
            say(&format!("suspended user {}\n", user.username));
        }
        UserCommand::Activate { username } => {
            let user = auth.set_status(&username, UserStatus::Active).map_err(describe)?;
            say(&format!("activated user {}\n", user.username));
        }
        UserCommand::SetRole { username, role } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("invalid --role: {e}"))?;
            let user = auth.set_role(&username, role).map_err(describe)?;
            say(&format!("user {} now has role {}\n", user.username, user.role));
        }
        UserCommand::SetPassword { username, password } => {
            let password = password.read()?;
            let user = auth.set_password(&username, &password).map_err(describe)?;
            say(&format!(
                "set the password of user {}; every session of it ended\n",
                user.username
            ));
        }
    }
    Ok(())
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the password from standard input")?;
    let s = s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&s);
    Ok(s.to_owned())
}
