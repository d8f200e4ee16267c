//! A time-stamping unit (TSU): one signing key and its certificate chain.
//!
//! A [`TimeStampUnit`] can only be built from a certificate that passes
//! [`hanko_pki::cert::check_tsa_certificate`] and certifies the signer's key
//! ([`hanko_pki::cert::check_key_matches`]): CONFORMANCE B.31-32, C.40. Its usable window
//! (certificate validity intersected with privateKeyUsagePeriod) is computed once, so
//! that the check before every token is two comparisons (C.41).

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use der::Decode as _;
use hanko_pki::Signer;
use hanko_pki::cert::{Certificate, check_key_matches, check_tsa_certificate};
use x509_cert::ext::pkix::PrivateKeyUsagePeriod;

use crate::Error;

/// One signing key with its certificate chain (leaf first).
pub struct TimeStampUnit {
    signer: Arc<dyn Signer>,
    chain: Vec<Certificate>,
    usable_from: SystemTime,
    usable_until: SystemTime,
}

impl fmt::Debug for TimeStampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeStampUnit")
            .field(
                "certificate",
                &self.chain.first().map(|c| c.subject_string()),
            )
            .field("algorithm", &self.signer.algorithm())
            .field("usable_from", &rfc3339(self.usable_from))
            .field("usable_until", &rfc3339(self.usable_until))
            .finish()
    }
}

/// What log lines show of a unit: `<subject> (<algorithm>), usable <from> to <until>`.
impl fmt::Display for TimeStampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}), usable {} to {}",
            self.certificate().subject_string(),
            self.signer.algorithm(),
            rfc3339(self.usable_from),
            rfc3339(self.usable_until)
        )
    }
}

/// `t` in RFC 3339, UTC, whole seconds (`2026-11-30T09:00:00Z`): how Hanko shows a
/// unit's and a certificate's times to people (log lines, `/tsa/policy`). Empty when `t`
/// is out of chrono's range.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl TimeStampUnit {
    /// Checks and assembles a unit. `chain[0]` is the TSA certificate; the rest (its
    /// issuers, up to but not necessarily including the root) go into tokens whose
    /// request sets certReq.
    pub fn new(
        signer: Arc<dyn Signer>,
        chain: Vec<Certificate>,
        now: SystemTime,
    ) -> Result<Self, Error> {
        let leaf = chain.first().ok_or(Error::EmptyChain)?;
        check_tsa_certificate(leaf, now).map_err(Error::Certificate)?;
        check_key_matches(leaf, signer.public_key_der()).map_err(Error::Certificate)?;
        let (pkup_from, pkup_until) = private_key_usage_period(leaf)?;
        let usable_from = pkup_from.map_or(leaf.not_before(), |t| t.max(leaf.not_before()));
        let usable_until = pkup_until.map_or(leaf.not_after(), |t| t.min(leaf.not_after()));
        tracing::info!(
            subject = %leaf.subject_string(),
            serial = %hex::encode(leaf.serial_der()),
            algorithm = %signer.algorithm(),
            usable_from = %rfc3339(usable_from),
            usable_until = %rfc3339(usable_until),
            "TSU certificate loaded and checked against its key"
        );
        Ok(Self {
            signer,
            chain,
            usable_from,
            usable_until,
        })
    }

    /// The signing key.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The chain, TSA certificate first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The TSA certificate.
    pub fn certificate(&self) -> &Certificate {
        // `new` refuses an empty chain.
        &self.chain[0]
    }

    /// Start of the window in which this unit may sign.
    pub fn usable_from(&self) -> SystemTime {
        self.usable_from
    }

    /// End of the window in which this unit may sign: the earlier of notAfter and the
    /// privateKeyUsagePeriod's end.
    pub fn usable_until(&self) -> SystemTime {
        self.usable_until
    }

    /// Whether the unit may sign at `t`.
    pub fn usable_at(&self, t: SystemTime) -> bool {
        self.usable_from <= t && t <= self.usable_until
    }
}

fn private_key_usage_period(
    cert: &Certificate,
) -> Result<(Option<SystemTime>, Option<SystemTime>), Error> {
    let Some(exts) = cert.parsed().tbs_certificate().extensions() else {
        return Ok((None, None));
    };
    for ext in exts {
        if ext.extn_id == hanko_pki::oid::PRIVATE_KEY_USAGE_PERIOD {
            let p = PrivateKeyUsagePeriod::from_der(ext.extn_value.as_bytes())
                .map_err(|e| Error::InvalidConfig(format!("privateKeyUsagePeriod: {e}")))?;
            return Ok((
                p.not_before.map(|t| t.to_system_time()),
                p.not_after.map(|t| t.to_system_time()),
            ));
        }
    }
    Ok((None, None))
}
