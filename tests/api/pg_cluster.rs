//! A private PostgreSQL cluster for tests that stop and start the database
//! under a running sessiond: `initdb` into a temporary directory, served
//! on a free port, stopped and started at will, removed when dropped.
//!
//! The server binaries are found in `SESSIOND_PG_BINDIR`, else in the
//! newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), else on
//! `PATH`. PostgreSQL refuses to run as root, so as root every server
//! command runs as the `postgres` user (`runuser`), which then owns the
//! directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A cluster in a temporary directory; stopped and deleted on drop.
pub struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster; `None`, after a loud warning, when the
    /// server binaries are missing outside CI (under `CI=true` that fails).
    pub fn start() -> Option<Self> {
        let Some(bindir) = bindir() else {
            let why = "initdb/pg_ctl not found (set SESSIOND_PG_BINDIR)";
            assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "CI needs them: {why}");
            eprintln!("\n***** WARNING: {why}; the database outage test is SKIPPED *****\n");
            return None;
        };
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("sessiond-pg-{}", crate::support::uuid_like()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        if as_postgres {
            chown_to_postgres(&dir);
        }
        let cluster = Self { bindir, dir, port: free_port(), as_postgres };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-instructions",
                "--encoding=UTF8",
            ],
        );
        // Listen on loopback TCP only; the socket lives in the directory
        // (the system's /var/run/postgresql belongs to the main cluster).
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 50\nshared_buffers = 16MB\nfsync = on\n\
             synchronous_commit = on\n",
            cluster.port,
            path_str(&cluster.dir),
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut f, conf.as_bytes()).expect("write postgresql.conf");
        cluster.start_server();
        Some(cluster)
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &["-D", path_str(&self.data_dir()), "-l", path_str(&log), "-w", "start"],
        );
    }

    /// Stops the server at once, as a crash would (`-m immediate`: no
    /// checkpoint; the next start replays the WAL), and waits for it to
    /// be gone.
    pub fn stop_server(&self) {
        self.run("pg_ctl", &["-D", path_str(&self.data_dir()), "-m", "immediate", "-w", "stop"]);
    }

    /// Runs one SQL statement with psql; its output without alignment.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url(), "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("psql output is UTF-8")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server program, to run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    /// Runs a server program; panics on failure.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default(),
        );
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&self.data_dir()), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where `initdb` and `pg_ctl` are.
fn bindir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("SESSIOND_PG_BINDIR").map(PathBuf::from) {
        return has_tools(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| has_tools(d))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_to_postgres(dir: &Path) {
    let ok = Command::new("chown")
        .args(["postgres:", path_str(dir)])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown postgres {}", dir.display());
}

/// A port nobody listens on now (the kernel's pick for port 0).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
