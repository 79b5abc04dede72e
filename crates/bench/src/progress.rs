//! A one-line progress bar on stderr, redrawn in place with `\r`.

use std::io::Write as _;
use std::time::{Duration, Instant};

/// Progress of a load of sessions and page visits.
pub(crate) struct Progress {
    label: String,
    sessions_total: u64,
    visits_total: u64,
    sessions: u64,
    visits: u64,
    started: Instant,
    drawn: Option<Instant>,
}

const WIDTH: usize = 30;

impl Progress {
    pub(crate) fn new(label: &str, sessions_total: u64, visits_total: u64) -> Self {
        let mut p = Self {
            label: label.to_owned(),
            sessions_total,
            visits_total,
            sessions: 0,
            visits: 0,
            started: Instant::now(),
            drawn: None,
        };
        p.draw();
        p
    }

    /// Counts more loaded rows; redraws at most four times a second.
    pub(crate) fn add(&mut self, sessions: u64, visits: u64) {
        self.sessions += sessions;
        self.visits += visits;
        if self.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
            self.draw();
        }
    }

    /// Draws the final state and ends the line.
    pub(crate) fn finish(mut self) {
        self.draw();
        eprintln!();
    }

    fn draw(&mut self) {
        self.drawn = Some(Instant::now());
        // Visits cost about as much as sessions each: weigh by rows.
        let total = (self.sessions_total + self.visits_total).max(1);
        let done = self.sessions + self.visits;
        let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64).round() as usize;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let eta = if done > 0 && done < total {
            format!(" ETA {:.0} s", secs * (total - done) as f64 / done as f64)
        } else {
            String::new()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {:>3.0}% {}/{} sessions {}/s, {}/{} visits {}/s, {:.0} s{}   ",
            self.label,
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0,
            thousands(self.sessions),
            thousands(self.sessions_total),
            thousands((self.sessions as f64 / secs) as u64),
            thousands(self.visits),
            thousands(self.visits_total),
            thousands((self.visits as f64 / secs) as u64),
            secs,
            eta
        );
        let _ = err.flush();
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }
}
