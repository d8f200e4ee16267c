//! The date of sealing as a reader of the document expects it, from the document's
//! language (the catalog's `/Lang`, a BCP 47 tag such as `ja-JP`).
//!
//! | Language | Example | Calendar day taken in |
//! |---|---|---|
//! | `ja` | 2026年12月2日 | Japan Standard Time (UTC+9, no daylight saving) |
//! | `zh` | 2026年12月2日 | China Standard Time (UTC+8) |
//! | `en` | 2 December 2026 | UTC |
//! | anything else, or none | 2026-12-02 (ISO 8601) | UTC |
//!
//! The day is the one of the seal's signing time (`/M` and the CMS time), so the text
//! and the signature agree. A document in Japanese sealed at 08:00 in Tokyo says the
//! day in Tokyo, not the day before in UTC. The Western (Gregorian) year is used: it is
//! what the signature's own times say; a Japanese-era year (令和8年) would be a further
//! option, not a default.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike as _, FixedOffset, Month, Offset as _, Utc};

/// The seal's date written for a document in language `lang` (a BCP 47 tag; `None`
/// when the document declares none).
pub fn sealing_date_text(at: SystemTime, lang: Option<&str>) -> String {
    let primary = lang
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let hours = match primary.as_str() {
        "ja" => 9,
        "zh" => 8,
        _ => 0,
    };
    let secs = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    // Whole hours within a day are always a valid offset; a time outside chrono's range
    // (hundreds of thousands of years away) falls back to the epoch rather than panic.
    let offset = FixedOffset::east_opt(hours * 3600).unwrap_or(Utc.fix());
    let date = DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .with_timezone(&offset)
        .date_naive();
    let (y, m, d) = (date.year(), date.month(), date.day());
    match primary.as_str() {
        "ja" | "zh" => format!("{y}年{m}月{d}日"),
        "en" => format!("{d} {} {y}", month_name(m)),
        _ => format!("{y:04}-{m:02}-{d:02}"),
    }
}

fn month_name(m: u32) -> &'static str {
    u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .map_or("", |m| m.name())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-12-02T00:30:00Z.
    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_171_400)
    }

    #[test]
    fn japanese_english_and_neutral() {
        assert_eq!(sealing_date_text(at(), Some("ja")), "2026年12月2日");
        assert_eq!(sealing_date_text(at(), Some("ja-JP")), "2026年12月2日");
        assert_eq!(sealing_date_text(at(), Some("en-GB")), "2 December 2026");
        assert_eq!(sealing_date_text(at(), Some("EN")), "2 December 2026");
        assert_eq!(sealing_date_text(at(), Some("de-DE")), "2026-12-02");
        assert_eq!(sealing_date_text(at(), None), "2026-12-02");
    }

    #[test]
    fn the_day_is_the_one_in_the_documents_country() {
        // 2026-12-01T20:00:00Z is already 2 December in Tokyo (05:00) and in
        // Beijing (04:00), still 1 December in UTC.
        let late = at() - Duration::from_secs(4 * 3600 + 30 * 60);
        assert_eq!(sealing_date_text(late, Some("ja-JP")), "2026年12月2日");
        assert_eq!(sealing_date_text(late, Some("zh-CN")), "2026年12月2日");
        assert_eq!(sealing_date_text(late, Some("en")), "1 December 2026");
    }
}
