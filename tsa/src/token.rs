//! TSTInfo and TimeStampResp encoding (RFC 3161 §2.4.2, EN 319 422 §5.2).
//!
//! Pure functions from checked values to DER. The signature itself is made by
//! [`hanko_pki::cms::sign_signed_data`]; this module only builds what goes in and what
//! wraps it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rasn::types::{BitString, Integer, OctetString, SequenceOf};
use rasn_cms::tsp::{Accuracy, PkiStatus, PkiStatusInfo, TimeStampResp, TstInfo};
use rasn_pkix::{Extension, GeneralName};

use crate::config::PolicyId;
use crate::rejection::Rejection;
use crate::request::CheckedRequest;
use crate::serial::Serial;

/// esi4-qtstStatement-1 / id-etsi-tsts-EuQCompliance (EN 319 422 §9.1), dotted: the
/// statement the `/policy` document names. The OID table is [`hanko_pki::oid`].
pub use hanko_pki::oid::dotted::QTST_STATEMENT_1 as OID_QTST_STATEMENT_1;

/// Truncates `t` to `digits` fraction digits and converts it for rasn.
///
/// rasn writes GeneralizedTime as `YYYYMMDDHHMMSS[.f*]Z` with the fraction's trailing
/// zeros removed and no fraction for whole seconds; truncating first makes the precision
/// the declared one (in-toto/witness#238: clients break on sloppy fractions).
pub(crate) fn gen_time(
    t: SystemTime,
    digits: u32,
) -> Result<(SystemTime, rasn::types::GeneralizedTime), Rejection> {
    let since = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Rejection::Internal("clock before 1970".into()))?;
    let unit = 10u32.pow(9 - digits.min(9));
    let nanos = since.subsec_nanos() - since.subsec_nanos() % unit;
    let secs = i64::try_from(since.as_secs())
        .map_err(|_| Rejection::Internal("clock out of range".into()))?;
    let dt = chrono::DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| Rejection::Internal("clock out of range".into()))?;
    let truncated = UNIX_EPOCH + Duration::new(since.as_secs(), nanos);
    Ok((truncated, dt.fixed_offset()))
}

/// The TSTInfo accuracy field for a validated accuracy (1 ms ..= 1 s).
pub(crate) fn accuracy(acc: Duration) -> Accuracy {
    if acc >= Duration::from_secs(1) {
        Accuracy {
            seconds: Some(Integer::from(1)),
            millis: None,
            micros: None,
        }
    } else {
        Accuracy {
            seconds: None,
            millis: Some(Integer::from(acc.as_millis().clamp(1, 999) as u16)),
            micros: None,
        }
    }
}

/// The qcStatements extension with esi4-qtstStatement-1, non-critical.
pub(crate) fn qc_statements_extension() -> Result<Extension, Rejection> {
    // QCStatements ::= SEQUENCE OF QCStatement; QCStatement ::= SEQUENCE {
    //   statementId OBJECT IDENTIFIER, statementInfo ANY OPTIONAL (absent here) }
    let statement = der::sequence(&[&der::oid(&oid::QTST_STATEMENT_1)]);
    let statements = der::sequence(&[&statement]);
    Ok(Extension {
        extn_id: oid::to_rasn(&oid::QC_STATEMENTS),
        critical: false,
        extn_value: OctetString::from(statements),
    })
}

/// Inputs of [`tst_info_der`] besides the request.
pub(crate) struct TstParams<'a> {
    pub policy: &'a PolicyId,
    pub serial: &'a Serial,
    pub gen_time: rasn::types::GeneralizedTime,
    pub accuracy: Accuracy,
    pub tsa_name: Option<GeneralName>,
    pub qualified: bool,
}

/// DER TSTInfo.
pub(crate) fn tst_info_der(req: &CheckedRequest, p: TstParams<'_>) -> Result<Vec<u8>, Rejection> {
    let extensions = if p.qualified {
        Some(vec![qc_statements_extension()?].into())
    } else {
        None
    };
    let tst = TstInfo {
        version: Integer::from(1),
        policy: p.policy.oid().clone(),
        message_imprint: req.message_imprint().clone(),
        serial_number: p
            .serial
            .to_integer()
            .map_err(|e| Rejection::Internal(e.to_string()))?,
        gen_time: p.gen_time,
        accuracy: Some(p.accuracy),
        ordering: false,
        nonce: req.nonce().cloned(),
        tsa: p.tsa_name,
        extensions,
    };
    rasn::der::encode(&tst).map_err(|e| Rejection::Internal(e.to_string()))
}

/// DER TimeStampResp { granted, token }.
pub(crate) fn granted_response(token_der: &[u8]) -> Result<Vec<u8>, Rejection> {
    let token: rasn_cms::ContentInfo =
        rasn::der::decode(token_der).map_err(|e| Rejection::Internal(e.to_string()))?;
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Granted,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    };
    rasn::der::encode(&resp).map_err(|e| Rejection::Internal(e.to_string()))
}

/// DER TimeStampResp { rejection, statusString, failInfo }, no token.
pub(crate) fn rejection_response(r: &Rejection) -> Vec<u8> {
    let bit = r.failure_info().bit();
    // A named-bit BIT STRING in DER has no trailing zero bits: exactly `bit + 1` bits.
    let mut fail_info = BitString::repeat(false, bit + 1);
    fail_info.set(bit, true);
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: Some(SequenceOf::from([r.status_string()])),
            fail_info: Some(fail_info),
        },
        time_stamp_token: None,
    };
    rasn::der::encode(&resp).unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding a rejection failed (bug); sending a fixed systemFailure");
        SYSTEM_FAILURE_DER.to_vec()
    })
}

/// `TimeStampResp { status { rejection, "system failure", systemFailure } }`, written out
/// so a response exists even if the encoder fails.
const SYSTEM_FAILURE_DER: &[u8] = &[
    0x30, 0x1b, 0x30, 0x19, 0x02, 0x01, 0x02, 0x30, 0x0d, 0x0c, 0x0b, b's', b'y', b's', b't', b'e',
    b'm', b' ', b'f', b'a', b'i', b'l', 0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40,
];

use hanko_pki::der;
use hanko_pki::oid;

/// The directoryName GeneralName of a certificate subject, only if rasn re-encodes the
/// Name to the very same bytes (so TSTInfo.tsa matches the certificate exactly).
pub(crate) fn directory_name(subject_der: &[u8]) -> Option<GeneralName> {
    let name: rasn_pkix::Name = rasn::der::decode(subject_der).ok()?;
    let again = rasn::der::encode(&name).ok()?;
    (again == subject_der).then_some(GeneralName::DirectoryName(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    fn encoded(t: SystemTime, digits: u32) -> String {
        let (_, g) = gen_time(t, digits).unwrap();
        let der = rasn::der::encode(&g).unwrap();
        String::from_utf8(der[2..].to_vec()).unwrap()
    }

    #[test]
    fn gen_time_precision_and_no_trailing_zeros() {
        let base = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        assert_eq!(encoded(base, 0), "20250615150640Z");
        let t = base + Duration::from_nanos(123_456_789);
        assert_eq!(encoded(t, 0), "20250615150640Z");
        assert_eq!(encoded(t, 1), "20250615150640.1Z");
        assert_eq!(encoded(t, 3), "20250615150640.123Z");
        // Trailing zeros disappear, whole seconds carry no fraction.
        let t = base + Duration::from_millis(500);
        assert_eq!(encoded(t, 3), "20250615150640.5Z");
        let t = base + Duration::from_millis(999) + Duration::from_nanos(999_999);
        assert_eq!(
            encoded(t, 3),
            "20250615150640.999Z",
            "truncated, not rounded"
        );
        let t = base + Duration::from_nanos(999_999);
        assert_eq!(encoded(t, 3), "20250615150640Z");
        let (trunc, _) = gen_time(base + Duration::from_nanos(1_234_567), 3).unwrap();
        assert_eq!(trunc, base + Duration::from_millis(1));
    }

    #[test]
    fn fixed_system_failure_is_what_the_encoder_makes() {
        let resp = TimeStampResp {
            status: PkiStatusInfo {
                status: PkiStatus::Rejection,
                status_string: Some(vec!["system fail".to_string()]),
                fail_info: Some({
                    let mut b = BitString::repeat(false, 26);
                    b.set(25, true);
                    b
                }),
            },
            time_stamp_token: None,
        };
        assert_eq!(rasn::der::encode(&resp).unwrap(), SYSTEM_FAILURE_DER);
    }

    #[test]
    fn accuracy_fields() {
        let a = accuracy(Duration::from_secs(1));
        assert_eq!(
            rasn::der::encode(&a).unwrap(),
            [0x30, 0x03, 0x02, 0x01, 0x01]
        );
        let a = accuracy(Duration::from_millis(250));
        assert_eq!(
            rasn::der::encode(&a).unwrap(),
            [0x30, 0x04, 0x80, 0x02, 0x00, 0xfa]
        );
    }
}
