//! The signing-time attribute's value (RFC 5652 §11.3), which CAdES signatures carry and
//! RFC 3161 tokens never do: UTCTime up to 2049, GeneralizedTime from 2050, whole
//! seconds. The calendar arithmetic is here because the crate has no date library and
//! needs none elsewhere.

use std::time::{SystemTime, UNIX_EPOCH};

use super::CmsError;
use crate::der::{tag, tlv};

/// signing-time: UTCTime for 1950..=2049, GeneralizedTime otherwise (RFC 5652 §11.3),
/// whole seconds.
pub(super) fn encode_signing_time(t: SystemTime) -> Result<Vec<u8>, CmsError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CmsError::TimeOutOfRange)?
        .as_secs();
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    if y > 9999 {
        return Err(CmsError::TimeOutOfRange);
    }
    if y < 2050 {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        Ok(tlv(tag::UTC_TIME, text.as_bytes()))
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        Ok(tlv(tag::GENERALIZED_TIME, text.as_bytes()))
    }
}

/// (year, month, day, hour, minute, second) of a Unix time, proleptic Gregorian, UTC.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_unix(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2024-02-29T12:34:56Z
        assert_eq!(civil_from_unix(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        // 2050-01-01T00:00:00Z switches to GeneralizedTime
        let t = UNIX_EPOCH + std::time::Duration::from_secs(2_524_608_000);
        assert_eq!(encode_signing_time(t).unwrap()[0], 0x18);
        let t = UNIX_EPOCH + std::time::Duration::from_secs(2_524_607_999);
        let enc = encode_signing_time(t).unwrap();
        assert_eq!(&enc[2..], b"491231235959Z");
    }
}
