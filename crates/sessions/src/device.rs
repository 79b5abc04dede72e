//! What a user agent says about the device behind a session.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// Browser, operating system and kind of device, for people to recognise
/// their sessions ("Chrome on Windows").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Browser family (`Chrome`, `Firefox`, `Safari`, …) or `Unknown`.
    pub browser: String,
    /// Operating system family (`Windows`, `macOS`, `iOS`, `Android`, `Linux`, …) or `Unknown`.
    pub os: String,
    /// `Desktop`, `Mobile`, `Tablet`, `Bot` or `Unknown`.
    pub device: String,
}

fn parser() -> &'static woothee::parser::Parser {
    static PARSER: OnceLock<woothee::parser::Parser> = OnceLock::new();
    PARSER.get_or_init(woothee::parser::Parser::new)
}

const UNKNOWN: &str = "Unknown";

/// Distinct user agents remembered; a handful of browsers and versions
/// cover nearly every session, so this rarely fills (and then restarts).
const MEMO_CAPACITY: usize = 4096;

fn memo() -> &'static RwLock<HashMap<Box<str>, DeviceInfo>> {
    static MEMO: OnceLock<RwLock<HashMap<Box<str>, DeviceInfo>>> = OnceLock::new();
    MEMO.get_or_init(|| RwLock::new(HashMap::new()))
}

impl DeviceInfo {
    /// Parses a `User-Agent` header with the woothee rule set (a maintained
    /// parser: no hand-written regex table here). Results are memoised:
    /// listing sessions parses every session's agent, and regex matching
    /// would otherwise dominate the listing's cost.
    pub fn parse(user_agent: Option<&str>) -> Self {
        let Some(ua) = user_agent else { return Self::parse_uncached(None) };
        if let Some(hit) = memo().read().unwrap_or_else(|e| e.into_inner()).get(ua) {
            return hit.clone();
        }
        let info = Self::parse_uncached(Some(ua));
        let mut m = memo().write().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MEMO_CAPACITY {
            m.clear();
        }
        m.insert(ua.into(), info.clone());
        info
    }

    fn parse_uncached(user_agent: Option<&str>) -> Self {
        let unknown =
            || Self { browser: UNKNOWN.into(), os: UNKNOWN.into(), device: UNKNOWN.into() };
        let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else {
            return unknown();
        };
        let Some(r) = parser().parse(ua) else {
            return unknown();
        };
        let known = |s: &str| {
            if s.is_empty() || s == "UNKNOWN" { UNKNOWN.to_owned() } else { s.to_owned() }
        };
        let os = os_family(r.os);
        let device = match r.category {
            "pc" => "Desktop",
            "smartphone" if r.os == "iPad" || (r.os == "Android" && !ua.contains("Mobile")) => {
                "Tablet"
            }
            "smartphone" | "mobilephone" => "Mobile",
            "crawler" => "Bot",
            _ => UNKNOWN,
        };
        Self { browser: known(r.name), os, device: device.to_owned() }
    }

    /// A short name people recognise: "Chrome on Windows".
    pub fn name(&self) -> String {
        match (self.browser.as_str(), self.os.as_str()) {
            (UNKNOWN, UNKNOWN) => "Unknown device".to_owned(),
            (b, UNKNOWN) => b.to_owned(),
            (UNKNOWN, o) => format!("Unknown browser on {o}"),
            (b, o) => format!("{b} on {o}"),
        }
    }
}

fn os_family(os: &str) -> String {
    let family = match os {
        o if o.starts_with("Windows") => "Windows",
        "Mac OSX" | "Mac OS Classic" => "macOS",
        "iPhone" | "iPad" | "iPod" => "iOS",
        "" | "UNKNOWN" => UNKNOWN,
        o => o,
    };
    family.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    const FIREFOX_MAC: &str =
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

    #[test]
    fn common_browsers() {
        let d = DeviceInfo::parse(Some(CHROME_WIN));
        assert_eq!(
            (d.browser.as_str(), d.os.as_str(), d.device.as_str()),
            ("Chrome", "Windows", "Desktop")
        );
        assert_eq!(d.name(), "Chrome on Windows");
        let d = DeviceInfo::parse(Some(SAFARI_IPHONE));
        assert_eq!(
            (d.browser.as_str(), d.os.as_str(), d.device.as_str()),
            ("Safari", "iOS", "Mobile")
        );
        let d = DeviceInfo::parse(Some(FIREFOX_MAC));
        assert_eq!(d.name(), "Firefox on macOS");
        assert_eq!(DeviceInfo::parse(Some(SAFARI_IPAD)).device, "Tablet");
    }

    #[test]
    fn missing_or_garbage_agents_are_unknown() {
        assert_eq!(DeviceInfo::parse(None).name(), "Unknown device");
        assert_eq!(DeviceInfo::parse(Some("")).device, "Unknown");
        let curl = DeviceInfo::parse(Some("curl/8.5.0"));
        assert_ne!(curl.device, "Desktop", "{curl:?}");
    }
}
