//! The opaque cursors of the paged reports: how a position in a report's
//! order is written into `next_cursor` and read back from `cursor`.

use kernel::{Duration, OffsetDateTime, Uuid};

use crate::{PagePath, PagePosition, TimelinePosition};

/// The opaque timeline cursor: `<started_ms>.<id as 32 hex digits>`.
pub(crate) fn format_cursor(started_at: OffsetDateTime, id: Uuid) -> String {
    format!("{}.{}", kernel::to_millis(started_at), id.simple())
}

/// Why a cursor is refused.
const BAD_CURSOR: &str = "is not a cursor from a previous page";

/// Reads a timeline cursor back into its position.
pub(crate) fn parse_cursor(s: &str) -> Result<TimelinePosition, &'static str> {
    const BAD: &str = BAD_CURSOR;
    let (ms, id) = s.split_once('.').ok_or(BAD)?;
    let ms: i64 = ms.parse().map_err(|_| BAD)?;
    if id.len() != 32 {
        return Err(BAD);
    }
    let id = Uuid::try_parse(id).map_err(|_| BAD)?;
    Ok(TimelinePosition { started_at: kernel::from_millis(ms), id })
}

/// The detailed timeline's cursor inside a session: the timeline cursor
/// of the session, then `.<seq>`, the first of its events still to show.
pub(crate) fn format_event_cursor(started_at: OffsetDateTime, id: Uuid, seq: i32) -> String {
    format!("{}.{seq}", format_cursor(started_at, id))
}

/// A detailed-timeline cursor: after a session (a timeline cursor), or
/// inside one (with the event to go on from, at least 1).
pub(crate) fn parse_event_cursor(s: &str) -> Result<(TimelinePosition, Option<i32>), &'static str> {
    let Some((head, seq)) = s.rsplit_once('.').filter(|(head, _)| head.contains('.')) else {
        return Ok((parse_cursor(s)?, None));
    };
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_CURSOR);
    }
    match seq.parse::<i32>() {
        Ok(seq) if seq >= 1 => Ok((parse_cursor(head)?, Some(seq))),
        _ => Err(BAD_CURSOR),
    }
}

/// The position just before `p` in `(started_at, id)` order, so that a
/// page can start AT `p` although the store's positions are exclusive:
/// the id just below at the same instant, or, below the nil id, the
/// greatest id of the millisecond before (instants are whole
/// milliseconds, and ids compare as 128-bit numbers).
pub(crate) fn just_before(p: TimelinePosition) -> TimelinePosition {
    match p.id.as_u128().checked_sub(1) {
        Some(id) => TimelinePosition { started_at: p.started_at, id: Uuid::from_u128(id) },
        None => TimelinePosition {
            started_at: p.started_at - Duration::milliseconds(1),
            id: Uuid::from_u128(u128::MAX),
        },
    }
}

/// The opaque cursor of the page reports: `<total seconds>.<the page path
/// as lowercase hex of its UTF-8 bytes>` (any path fits in a JSON string
/// this way, and reads back exactly).
pub(crate) fn format_page_cursor(p: &PagePosition) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(24 + 2 * p.page.len());
    out.push_str(&p.time_sum.to_string());
    out.push('.');
    for b in p.page.bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Reads a page-report cursor back into its position.
pub(crate) fn parse_page_cursor(s: &str) -> Result<PagePosition, &'static str> {
    // A page path is at most 2048 characters of at most 4 bytes each.
    const MAX_HEX: usize = 2 * 4 * 2048;
    let (time, hex) = s.split_once('.').ok_or(BAD_CURSOR)?;
    if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_CURSOR);
    }
    let time_sum: i64 = time.parse().map_err(|_| BAD_CURSOR)?;
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > MAX_HEX {
        return Err(BAD_CURSOR);
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(BAD_CURSOR)?;
    let page = String::from_utf8(bytes).map_err(|_| BAD_CURSOR)?;
    // Every stored page is a valid path: anything else (another report's
    // cursor, or a NUL, which PostgreSQL text cannot even hold) was never
    // a position in this report.
    let page = PagePath::parse(&page).map_err(|_| BAD_CURSOR)?.0;
    Ok(PagePosition { time_sum, page })
}

#[cfg(test)]
mod tests {
    use kernel::parse_instant;

    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        parse_instant(s).expect("instant")
    }

    #[test]
    fn page_cursors_round_trip_any_path() {
        for page in ["/", "/a.b?c=d#e", "/é/日本/🙂", &format!("/{}", "x".repeat(2047))] {
            let p = PagePosition { time_sum: 86_400 * 3, page: page.into() };
            let c = format_page_cursor(&p);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'), "{c}");
            assert_eq!(parse_page_cursor(&c), Ok(p));
        }
        let huge = format!("1.{}", "2f".repeat(4 * 2048 + 1));
        assert!(parse_page_cursor(&huge).is_err());
    }

    #[test]
    fn just_before_is_the_predecessor() {
        let when = at("2024-01-01T09:00:00.123Z");
        let p = TimelinePosition { started_at: when, id: Uuid::from_u128(0x100) };
        assert_eq!(
            just_before(p),
            TimelinePosition { started_at: when, id: Uuid::from_u128(0xff) }
        );
        let p = TimelinePosition { started_at: when, id: Uuid::nil() };
        assert_eq!(
            just_before(p),
            TimelinePosition {
                started_at: at("2024-01-01T09:00:00.122Z"),
                id: Uuid::from_u128(u128::MAX)
            }
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let id = kernel::new_id();
        let when = at("2024-01-01T09:00:00.123Z");
        let c = format_cursor(when, id);
        assert_eq!(parse_cursor(&c), Ok(TimelinePosition { started_at: when, id }));
        for junk in ["", "abc", "1.2", "x.00000000000000000000000000000000", &format!("1.{id}")] {
            assert!(parse_cursor(junk).is_err(), "{junk}");
        }
    }
}
