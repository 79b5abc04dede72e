//! What the process writes: the log (its filter, format and colours), the
//! line that says where the server listens, command-line output, and the
//! configuration part of `--help`.

use crate::config::{self, LogFormat};

/// What `--help` adds about configuration, which comes from the
/// environment rather than from flags.
pub(crate) fn configuration_help() -> String {
    let mut names = vec!["DATABASE_URL"];
    names.extend_from_slice(config::KNOWN);
    let mut lines = vec![String::new()];
    for name in names {
        let line = lines.last().map_or(0, String::len);
        if line > 0 && line + name.len() > 76 {
            lines.push(String::new());
        }
        if let Some(last) = lines.last_mut() {
            last.push_str("  ");
            last.push_str(name);
        }
    }
    format!(
        "Configuration comes from environment variables, and from a .env file in the\n\
         working directory when there is one (variables already set win). README.md,\n\
         section \"Configuration\", gives every default; an invalid value stops\n\
         start-up with one line naming it.\n\nVariables:\n{}",
        lines.join("\n")
    )
}

/// Writes `text` to standard output. A reader that went away (`sessiond
/// openapi | head`) ends the output quietly, as it does for any Unix
/// tool, instead of panicking as `print!` does on a broken pipe.
pub(crate) fn say(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("sessiond: cannot write to standard output: {e}");
    }
}

/// The log filter: `RUST_LOG`, default `info`. actix-http logs every
/// request it cannot parse (a NUL or an obsolete line folding in a header,
/// a negative `Content-Length`, an oversized header, a client that never
/// finishes) at ERROR, so any client could write ERROR lines at will;
/// those lines of its HTTP/1 parser are shown only when the operator asks
/// for debug or trace, or names an `actix_http` target.
fn log_filter(rust_log: Option<&str>) -> String {
    let base = rust_log.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info");
    let verbose = base.split(',').any(|d| matches!(d.trim(), "debug" | "trace"));
    if verbose || base.contains("actix_http") {
        base.to_owned()
    } else {
        format!("{base},actix_http::h1::dispatcher=off,actix_http::h1::decoder=off")
    }
}

pub(crate) fn init_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(rust_log.as_deref()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(None)));
    // Colour codes only for a person at a terminal: in a file, a pipe or a
    // log shipper they are noise in every line.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The line that tells tests, scripts and people where the server listens,
/// on standard output: plain text, or under `SESSIOND_LOG_FORMAT=json` one
/// JSON object shaped like the log's own lines, so that a log shipper
/// reading both streams parses every line.
pub(crate) fn listening_line(format: LogFormat, url: &str) -> String {
    let message = format!("sessiond listening on {url}");
    match format {
        LogFormat::Text => format!("{message}\n"),
        LogFormat::Json => {
            let now = kernel::format_instant(kernel::OffsetDateTime::now_utc());
            let line = serde_json::json!({
                "timestamp": now,
                "level": "INFO",
                "fields": {"message": message, "url": url},
                "target": "sessiond",
            });
            format!("{line}\n")
        }
    }
}

/// `sessiond keys list`: one key a line, aligned; never private material.
pub(crate) fn key_table(keys: &[tokens::KeyInfo]) -> String {
    let at = |t: Option<kernel::OffsetDateTime>| t.map_or("-".to_owned(), kernel::format_instant);
    let mut rows = vec![[
        "KID".to_owned(),
        "ALG".to_owned(),
        "STATE".to_owned(),
        "CREATED".to_owned(),
        "ACTIVATED".to_owned(),
        "RETIRED".to_owned(),
        "VERIFIES UNTIL".to_owned(),
    ]];
    for k in keys {
        rows.push([
            k.kid.clone(),
            k.alg.to_string(),
            k.state.to_string(),
            kernel::format_instant(k.created_at),
            at(k.activated_at),
            at(k.retired_at),
            at(k.verifies_until),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> =
            row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actix_parse_errors_are_hidden_unless_asked_for() {
        let quiet = log_filter(None);
        assert!(quiet.starts_with("info,") && quiet.contains("actix_http::h1::dispatcher=off"));
        assert!(log_filter(Some("warn,sessiond=debug")).contains("dispatcher=off"));
        assert_eq!(log_filter(Some("debug")), "debug");
        assert_eq!(log_filter(Some("info,trace")), "info,trace");
        assert_eq!(log_filter(Some("actix_http=error")), "actix_http=error");
        for f in [quiet, log_filter(Some("warn"))] {
            assert!(tracing_subscriber::EnvFilter::try_new(&f).is_ok(), "{f}");
        }
    }

    #[test]
    fn the_listening_line_is_json_in_json_mode() {
        let url = "http://127.0.0.1:8000";
        assert_eq!(listening_line(LogFormat::Text, url), format!("sessiond listening on {url}\n"));
        let line = listening_line(LogFormat::Json, url);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(v["fields"]["message"], format!("sessiond listening on {url}"));
        assert_eq!((v["level"].as_str(), v["fields"]["url"].as_str()), (Some("INFO"), Some(url)));
    }

    #[test]
    fn help_names_the_configuration() {
        let help = configuration_help();
        for name in ["DATABASE_URL", "SESSIOND_BIND", "SESSIOND_LOG_FORMAT", ".env", "README"] {
            assert!(help.contains(name), "{name} missing from {help}");
        }
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
    }
}
