//! The servers under test: building the release binary, starting one
//! `sessiond` process per database, and throwaway databases.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The workspace root, where `cargo build -p sessiond` runs.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `sessiond` in release mode (a no-op when it is up to date) and
/// returns the path of the binary, next to this one in the target directory.
pub(crate) fn build_sessiond() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building: cargo build --release -p sessiond");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "sessiond"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release -p sessiond failed ({status})"));
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating the bench binary: {e}"))?;
    let path = exe
        .parent()
        .map(|dir| dir.join(format!("sessiond{}", std::env::consts::EXE_SUFFIX)))
        .ok_or("the bench binary has no directory")?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("built sessiond, but {} does not exist", path.display()))
    }
}

/// A running `sessiond`, killed when dropped (on panic too).
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) started_in: Duration,
}

impl Server {
    /// Starts `binary` on `database_url` with an ephemeral port, rate
    /// limits off and `env` added, in `dir` (so no `.env` of the caller is
    /// read), and waits for its `sessiond listening on http://…` line.
    pub(crate) fn start_with(
        binary: &Path,
        database_url: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let t0 = Instant::now();
        let mut cmd = sessiond_command(binary, database_url, dir);
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .arg("serve")
            .env("SESSIOND_BIND", "127.0.0.1:0")
            .env("SESSIOND_RATE_LIMIT_ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("no stdout pipe".to_owned());
        };
        // From here on the guard kills the process on every exit path.
        let mut server =
            Self { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), started_in: Duration::ZERO };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Some(rest) = line.trim().strip_prefix("sessiond listening on http://")
                {
                    sent = true;
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                } else {
                    eprintln!("[sessiond stdout] {line}");
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => {
                    server.addr = addr
                        .parse()
                        .map_err(|e| format!("unexpected listening address {addr:?}: {e}"))?;
                    server.started_in = t0.elapsed();
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        return Err(format!("sessiond exited during start-up ({status})"));
                    }
                    if Instant::now() > deadline {
                        return Err("sessiond did not report listening within 120 s".to_owned());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().map(|s| s.to_string());
                    return Err(format!(
                        "sessiond closed its stdout without listening ({})",
                        status.unwrap_or_else(|e| e.to_string())
                    ));
                }
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// `binary` with none of the caller's `SESSIOND_*` variables, on
/// `database_url`, in `dir` (so no `.env` of the caller is read), logging
/// warnings only.
fn sessiond_command(binary: &Path, database_url: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESSIOND_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir).env("DATABASE_URL", database_url).env("RUST_LOG", "warn");
    cmd
}

/// Runs `sessiond <args>` on `database_url` with `stdin` as its standard
/// input and returns its standard output; an error with its standard
/// error when it fails.
pub(crate) fn run_sessiond(
    binary: &Path,
    database_url: &str,
    dir: &Path,
    args: &[&str],
    stdin: &str,
) -> Result<String, String> {
    use std::io::Write as _;
    let mut child = sessiond_command(binary, database_url, dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).map_err(|e| format!("writing to sessiond: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("waiting for sessiond: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "sessiond {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL database `bench_<id>`, dropped when this is dropped
/// (after the server using it, which must be declared after it).
pub(crate) struct PgDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl PgDatabase {
    /// Creates the database with `psql` on the server of `admin_url`.
    pub(crate) fn create(admin_url: &str, id: &str) -> Result<Self, String> {
        let name = format!("bench_{id}");
        let url = with_database(admin_url, &name)
            .ok_or_else(|| format!("cannot parse PostgreSQL URL {admin_url:?}"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self { admin_url: admin_url.to_owned(), name, url })
    }

    /// Runs `bench` on a fresh database (dropped afterwards), or says
    /// loudly that PostgreSQL is unreachable and returns `skipped` of why.
    pub(crate) fn bench_or_skip<T>(
        admin_url: &str,
        id: &str,
        bench: impl FnOnce(&str) -> T,
        skipped: impl FnOnce(String) -> T,
    ) -> T {
        match Self::create(admin_url, id) {
            Err(e) => {
                println!(
                    "\n************************************************************\n\
                     PostgreSQL unreachable at {admin_url}, skipping:\n  {e}\n\
                     (start it or set TEST_DATABASE_URL)\n\
                     ************************************************************\n"
                );
                skipped(format!("unreachable at {admin_url}"))
            }
            Ok(db) => {
                println!("database: {}", db.url);
                // Dropped after `bench`, which stops the servers using it.
                bench(&db.url)
            }
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    psql_output(url, sql).map(drop)
}

/// Runs `sql` with `psql` on `url`; its output, unaligned, without headers.
pub(crate) fn psql_output(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "3")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `url` with its database name replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> Option<String> {
    let scheme_end = url.find("://")? + 3;
    let (before_query, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let rest = before_query.get(scheme_end..)?;
    let authority = rest.find('/').map_or(rest, |slash| &rest[..slash]);
    Some(format!("{}{authority}/{name}{query}", &url[..scheme_end]))
}

/// The current user's temporary directory for one run, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(id: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("sessiond-bench-{id}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/b")
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "b").as_deref(),
            Some("postgresql://u:p@h/b?sslmode=disable")
        );
        assert_eq!(with_database("postgres://h:5432", "b").as_deref(), Some("postgres://h:5432/b"));
    }
}
