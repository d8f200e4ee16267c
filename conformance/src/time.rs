//! GeneralizedTime and UTCTime as the checks read them, and the calendar arithmetic they
//! need (proleptic Gregorian, UTC; no leap seconds, as in X.509 and RFC 3161).

/// A parsed GeneralizedTime: seconds since the Unix epoch, the fraction's digits as
/// written, and whether it was written in the DER profile (RFC 5280 §4.1.2.5.2 and RFC
/// 3161 §2.4.2: `YYYYMMDDhhmmss[.f*]Z`, no trailing zero in the fraction, no bare dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// The fraction of a second, as written after the dot (may be empty).
    pub fraction: String,
    /// Why the encoding is not the DER profile, if it is not.
    pub profile_defect: Option<String>,
}

impl GenTime {
    /// Nanoseconds of the fraction.
    pub fn nanos(&self) -> u32 {
        let mut digits: String = self.fraction.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        digits.parse().unwrap_or(0)
    }

    /// The time in seconds, with the fraction, as f64 (for comparisons with a clock).
    pub fn as_secs_f64(&self) -> f64 {
        self.unix as f64 + f64::from(self.nanos()) / 1e9
    }
}

/// Days since the epoch of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and time of Unix seconds: (year, month, day, hour, minute, second).
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// RFC 3339 text of Unix seconds, in UTC.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn digits(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn to_unix(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d == 0
        || d > month_days[mo as usize - 1]
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Parses a GeneralizedTime's contents. `None` when it is not a time at all; a time in
/// another form than the DER profile parses with [`GenTime::profile_defect`] set.
pub fn parse_generalized(value: &[u8]) -> Option<GenTime> {
    let text = std::str::from_utf8(value).ok()?;
    if text.len() < 14 || !text.is_ascii() {
        return None;
    }
    let y = i64::from(digits(&text[0..4])?);
    let mo = digits(&text[4..6])?;
    let d = digits(&text[6..8])?;
    let h = digits(&text[8..10])?;
    let mi = digits(&text[10..12])?;
    let s = digits(&text[12..14])?;
    let unix = to_unix(y, mo, d, h, mi, s)?;
    let rest = &text[14..];
    let mut defect = None;
    let (fraction, zone) = if let Some(after_dot) = rest.strip_prefix('.') {
        let end = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        let (f, z) = after_dot.split_at(end);
        if f.is_empty() {
            defect = Some("a decimal point with no fraction digits".to_owned());
        } else if f.ends_with('0') {
            defect = Some(format!("the fraction .{f} ends in a zero"));
        }
        (f.to_owned(), z)
    } else if let Some(after_comma) = rest.strip_prefix(',') {
        defect = Some("a comma as the decimal sign".to_owned());
        let end = after_comma
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_comma.len());
        let (f, z) = after_comma.split_at(end);
        (f.to_owned(), z)
    } else {
        (String::new(), rest)
    };
    if zone != "Z" {
        defect = Some(format!(
            "the time zone is {:?}, not \"Z\"",
            if zone.is_empty() { "absent" } else { zone }
        ));
    }
    Some(GenTime {
        unix,
        fraction,
        profile_defect: defect,
    })
}

/// Parses a UTCTime's contents in the RFC 5280 profile (`YYMMDDhhmmssZ`; years 50–99
/// are 19xx).
pub fn parse_utc(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    if text.len() != 13 || !text.ends_with('Z') {
        return None;
    }
    let yy = i64::from(digits(&text[0..2])?);
    let y = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    to_unix(
        y,
        digits(&text[2..4])?,
        digits(&text[4..6])?,
        digits(&text[6..8])?,
        digits(&text[8..10])?,
        digits(&text[10..12])?,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_and_their_defects() {
        let t = parse_generalized(b"20261203120000Z").unwrap();
        assert_eq!(rfc3339(t.unix), "2026-12-03T12:00:00Z");
        assert_eq!(t.profile_defect, None);
        let t = parse_generalized(b"20261203120000.25Z").unwrap();
        assert_eq!(t.nanos(), 250_000_000);
        assert_eq!(t.profile_defect, None);
        assert!(
            parse_generalized(b"20261203120000.250Z")
                .unwrap()
                .profile_defect
                .is_some()
        );
        assert!(
            parse_generalized(b"20261203120000.Z")
                .unwrap()
                .profile_defect
                .is_some()
        );
        assert!(
            parse_generalized(b"20261203120000")
                .unwrap()
                .profile_defect
                .is_some()
        );
        assert!(
            parse_generalized(b"20261203120000+0900")
                .unwrap()
                .profile_defect
                .is_some()
        );
        assert!(parse_generalized(b"20261303120000Z").is_none());
        assert_eq!(parse_utc(b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
