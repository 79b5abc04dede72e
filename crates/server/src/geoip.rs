//! Session locations from a MaxMind-format GeoIP database
//! (`SESSIOND_GEOIP_DB`), read with the maintained `maxminddb` crate.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context as _;
use maxminddb::{Reader, geoip2};

/// Looks client addresses up in a GeoIP2/GeoLite2 City or Country database.
pub struct MaxMindLocator {
    reader: Reader<Vec<u8>>,
}

impl MaxMindLocator {
    /// Opens the database file (read into memory once).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let reader = Reader::open_readfile(path)
            .with_context(|| format!("cannot read the GeoIP database {}", path.display()))?;
        Ok(Self { reader })
    }

    /// A locator over database bytes (for tests).
    #[cfg(test)]
    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<Self> {
        Ok(Self { reader: Reader::from_source(bytes)? })
    }
}

impl sessions::Locator for MaxMindLocator {
    /// "City, CC" when the city is known, else the country's English name
    /// or code; `None` for unknown and private addresses.
    fn locate(&self, ip: &str) -> Option<String> {
        let ip: IpAddr = ip.parse().ok()?;
        let found = self.reader.lookup(ip).ok()?;
        let city: geoip2::City<'_> = found.decode().ok()??;
        let code = city.country.iso_code;
        match (city.city.names.english, code) {
            (Some(name), Some(cc)) => Some(format!("{name}, {cc}")),
            (Some(name), None) => Some(name.to_owned()),
            (None, _) => city.country.names.english.or(code).map(str::to_owned),
        }
    }
}

#[cfg(test)]
#[path = "../../../tests/api/mmdb.rs"]
mod mmdb;

#[cfg(test)]
mod tests {
    use super::*;
    use sessions::Locator as _;

    use super::mmdb::build_mmdb;

    #[test]
    fn locates_city_and_country() {
        let db = build_mmdb([203, 0, 113, 0], 24, Some("Testville"), "XX", "Testland");
        let l = MaxMindLocator::from_bytes(db).expect("valid database");
        assert_eq!(l.locate("203.0.113.7").as_deref(), Some("Testville, XX"));
        assert_eq!(l.locate("203.0.114.7"), None);
        assert_eq!(l.locate("127.0.0.1"), None);
        assert_eq!(l.locate("not an ip"), None);
        assert_eq!(l.locate("::1"), None);
    }

    #[test]
    fn falls_back_to_the_country() {
        let db = build_mmdb([198, 51, 100, 0], 24, None, "YY", "Yland");
        let l = MaxMindLocator::from_bytes(db).expect("valid database");
        assert_eq!(l.locate("198.51.100.1").as_deref(), Some("Yland"));
    }
}
