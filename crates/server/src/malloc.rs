//! glibc's malloc, tuned for a server that keeps a large cache.
//!
//! With its defaults glibc gives each busy thread an arena of its own (up
//! to eight per core) and, once a large block (an Argon2 hash's 19 MiB) has
//! been freed, serves blocks of up to that size from the arenas instead of
//! `mmap`: memory freed after a burst stays with the process. Measured with
//! `make bench` (RSS with 100,000 cached sessions): 92.6 MiB on PostgreSQL
//! with the defaults, 55.3 MiB with two arenas and a fixed 128 KiB mmap
//! and trim threshold, at the same token-info throughput.
//!
//! glibc reads these settings (`GLIBC_TUNABLES`) only when the process
//! starts, and calling `mallopt` would need `unsafe`, which this workspace
//! forbids; so `sessiond serve` re-executes itself once with them set,
//! unless the environment already has `GLIBC_TUNABLES` (the operator's own
//! choice wins).

/// The environment variable glibc reads its tunables from.
pub const TUNABLES: &str = "GLIBC_TUNABLES";

/// Two arenas; blocks of 128 KiB and more always from `mmap` (and given
/// back on free); the heap's top trimmed past 128 KiB.
pub const SETTINGS: &str = "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";

/// Replaces the process with itself started with [`SETTINGS`] (same
/// arguments, same pid), unless [`TUNABLES`] is set already. Returns only
/// when it did not: then the process runs with glibc's defaults, which
/// are correct, only hungrier.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn reexec_tuned() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(TUNABLES).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only on failure.
    let _failed = command.args(args).env(TUNABLES, SETTINGS).exec();
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn reexec_tuned() {}
