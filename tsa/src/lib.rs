//! RFC 3161 time-stamp protocol core for Hanko: request checks, TSTInfo, token,
//! failure codes, serial numbers and the clock guard.
//!
//! # What this crate does not do
//! No I/O: no HTTP, no SQL, no PKCS#11. It takes request DER, a signing key behind
//! [`hanko_pki::Signer`], a [`ClockGuard`] and a [`SerialSource`], and returns response
//! DER plus the record to log. The server does HTTP and makes the record durable before
//! it answers; if it cannot, it sends [`Tsa::failure_response`] instead of the token, so
//! no token leaves that is not in the log. The clock comes in as a [`ClockSource`] and
//! serials as a [`SerialSource`]; the server implements both (the kernel's adjtimex or
//! chrony, and ranges reserved in the issuance log), so nothing here reads a device, a
//! file or the system clock.
//!
//! ```text
//!  request DER
//!     |  request::CheckedRequest::parse   (DER only, v1, hash, imprint, policy, ext, nonce)
//!     v
//!  CheckedRequest ---- unit for the policy (TimeStampUnit: key + checked certificate)
//!     |  ClockGuard::now                  (synchronised, within accuracy, no jump)
//!     |  SerialSource::next_serial
//!     |  token::tst_info_der              (genTime truncated to the declared precision)
//!     |  pki::cms::sign_signed_data       (signed attributes DER SET -> Signer::sign)
//!     v
//!  Response { der: TimeStampResp, outcome: Granted(IssuedToken) | Rejected(Rejection) }
//! ```
//!
//! Every refusal is a [`Rejection`], and [`Rejection::failure_info`] is the one place
//! that maps it to a PKIFailureInfo. The design reasoning is in [`manual`].
//!
//! ```
//! use hanko_tsa::{Rejection, FailureInfo, TsaConfig, CheckedRequest};
//! // An empty body is not a TimeStampReq: badDataFormat.
//! let r = CheckedRequest::parse(&[], &TsaConfig::default()).unwrap_err();
//! assert_eq!(r, Rejection::Malformed);
//! assert_eq!(r.failure_info(), FailureInfo::BadDataFormat);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod manual;
pub mod rejection;
pub mod request;
pub mod serial;
pub mod token;
pub mod unit;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use hanko_pki::HashAlgorithm;
use hanko_pki::cms::{self, Content, SignedDataParams};
use rasn_pkix::GeneralName;

pub use clock::{
    ClockGuard, ClockGuardConfig, ClockProblem, ClockReport, ClockSource, ClockStatus,
    ClockTransition, ManualClock,
};
pub use config::{ETSI_BEST_PRACTICES_POLICY, PolicyId, TsaConfig};
pub use rejection::{FailureInfo, Rejection};
pub use request::CheckedRequest;
pub use serial::{CountingSerials, Serial, SerialError, SerialSource};
pub use unit::{TimeStampUnit, rfc3339};

/// Errors of setting a TSA up and of its readiness. Request-level refusals are
/// [`Rejection`]s, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent (the message says which setting).
    #[error("invalid TSA configuration: {0}")]
    InvalidConfig(String),
    /// A unit was given no certificate.
    #[error("time-stamping unit has an empty certificate chain")]
    EmptyChain,
    /// The TSA certificate fails the profile check or does not certify the key.
    #[error("TSA certificate refused: {0}")]
    Certificate(hanko_pki::cert::CertError),
    /// `include_tsa_name` is set but the certificate subject does not survive a
    /// decode/encode round trip, so TSTInfo.tsa could not match it byte for byte.
    #[error("TSA certificate subject cannot be copied into TSTInfo.tsa exactly")]
    TsaNameNotExact,
    /// A unit was offered for a policy the configuration does not list.
    #[error("policy {0} is not configured")]
    UnknownPolicy(String),
    /// No unit is installed for a configured policy (not ready).
    #[error("no time-stamping unit for policy {0}")]
    NoUnit(String),
    /// The unit of a policy is outside its usage period (certificate notAfter or
    /// privateKeyUsagePeriod): roll over to the next key (not ready).
    #[error("time-stamping unit for policy {policy} is not usable now (usable until {until:?})")]
    UnitNotUsable {
        /// The policy.
        policy: String,
        /// End of the unit's usage period.
        until: SystemTime,
    },
    /// The signer reports it cannot sign now (token absent, not logged in) (not ready).
    #[error("signer for policy {0} is not ready")]
    SignerNotReady(String),
    /// The clock guard refuses (not ready).
    #[error("clock: {0}")]
    Clock(ClockProblem),
}

/// What [`Tsa::respond`] returns: the DER to send and what happened.
#[derive(Debug)]
pub struct Response {
    /// DER TimeStampResp.
    pub der: Vec<u8>,
    /// Granted with the record to log, or rejected with the reason.
    pub outcome: Outcome,
}

/// The outcome of one request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the token is the common case; boxing buys nothing
pub enum Outcome {
    /// A token was issued; log it before sending the response.
    Granted(IssuedToken),
    /// No token.
    Rejected(Rejection),
}

/// The record of an issued token, for the issuance log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// TSTInfo.serialNumber.
    pub serial: Serial,
    /// TSTInfo.genTime (already truncated to the declared precision).
    pub gen_time: SystemTime,
    /// TSTInfo.policy.
    pub policy: PolicyId,
    /// The imprint's hash algorithm.
    pub hash_alg: HashAlgorithm,
    /// The hashed message.
    pub imprint: Vec<u8>,
    /// DER TimeStampToken (ContentInfo).
    pub token_der: Vec<u8>,
    /// DER TSTInfo (the eContent).
    pub tst_info_der: Vec<u8>,
}

/// A unit as installed for one policy, with what every token of it reuses.
#[derive(Debug)]
struct Installed {
    unit: Arc<TimeStampUnit>,
    tsa_name: Option<GeneralName>,
}

/// Bytes of a token beyond its certificates, names and signature value: ContentInfo,
/// SignedData and SignerInfo framing, algorithm identifiers, the signed attributes, and
/// a TSTInfo at its largest (policy OID, a SHA-512 imprint, a 20-byte serial, genTime
/// with fraction, accuracy, a nonce of up to 32 bytes, the qcStatements extension), with
/// room to spare. See [`Tsa::max_token_len`].
pub const TOKEN_OVERHEAD: usize = 1024;

/// The time-stamp authority: configuration, units per policy, clock and serials.
#[derive(Debug)]
pub struct Tsa {
    config: TsaConfig,
    clock: ClockGuard,
    serials: Arc<dyn SerialSource>,
    units: RwLock<BTreeMap<PolicyId, Arc<Installed>>>,
}

impl Tsa {
    /// A TSA with no units yet; install one per policy with [`Tsa::install_unit`].
    ///
    /// The clock guard's accuracy must equal the configuration's.
    pub fn new(
        config: TsaConfig,
        clock: ClockGuard,
        serials: Arc<dyn SerialSource>,
    ) -> Result<Self, Error> {
        config.validate()?;
        if clock.config().accuracy != config.accuracy {
            return Err(Error::InvalidConfig(format!(
                "clock guard accuracy {:?} differs from the token accuracy {:?}",
                clock.config().accuracy,
                config.accuracy
            )));
        }
        if clock.config().jump_tolerance > config.accuracy {
            return Err(Error::InvalidConfig(
                "clock jump tolerance exceeds the accuracy".into(),
            ));
        }
        Ok(Self {
            config,
            clock,
            serials,
            units: RwLock::new(BTreeMap::new()),
        })
    }

    /// Makes `unit` the active unit of `policy`, replacing the previous one (key
    /// rollover). One unit may serve several policies.
    pub fn install_unit(&self, policy: &PolicyId, unit: Arc<TimeStampUnit>) -> Result<(), Error> {
        if !self.config.accepts_policy(policy) {
            return Err(Error::UnknownPolicy(policy.to_string()));
        }
        let tsa_name = if self.config.include_tsa_name {
            Some(
                token::directory_name(unit.certificate().subject_der())
                    .ok_or(Error::TsaNameNotExact)?,
            )
        } else {
            None
        };
        tracing::info!(%policy, %unit, "time-stamping unit activated");
        let installed = Arc::new(Installed { unit, tsa_name });
        self.units
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(policy.clone(), installed);
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &TsaConfig {
        &self.config
    }

    /// The clock guard (for `/readyz` and the clock gauge).
    pub fn clock(&self) -> &ClockGuard {
        &self.clock
    }

    /// Whether the TSA can issue now, and if not the first reason: a policy without a
    /// unit, a unit outside its usage period, a signer not ready, or the clock (unless
    /// in dev mode).
    pub fn check_ready(&self) -> Result<(), Error> {
        let report = self.clock.report();
        if let Some(p) = report.problem
            && !report.dev_mode
        {
            return Err(Error::Clock(p));
        }
        // The guard's own reading, so that readiness and issuance agree on the time.
        let now = report.now;
        for policy in self.config.policies() {
            let installed = self
                .installed(&policy)
                .ok_or_else(|| Error::NoUnit(policy.to_string()))?;
            if !installed.unit.usable_at(now) {
                return Err(Error::UnitNotUsable {
                    policy: policy.to_string(),
                    until: installed.unit.usable_until(),
                });
            }
            if !installed.unit.signer().is_ready() {
                return Err(Error::SignerNotReady(policy.to_string()));
            }
        }
        Ok(())
    }

    /// An upper bound on the DER length of a token any installed unit issues, its
    /// chain included (certReq): what a PAdES B-T seal reserves for the token before
    /// it exists. The chain, the unit's subject (the tsa name) and the sid's issuer and
    /// serial as they are, the key's longest signature, and [`TOKEN_OVERHEAD`] for the
    /// rest. `None` before a unit is installed.
    pub fn max_token_len(&self) -> Option<usize> {
        self.units
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|installed| {
                let unit = &installed.unit;
                let cert = unit.certificate();
                let chain: usize = unit.chain().iter().map(|c| c.der().len()).sum();
                let signature = hanko_pki::alg::key_type_of_spki(unit.signer().public_key_der())
                    .map_or(1024, |k| k.max_signature_len());
                chain
                    + cert.subject_der().len()
                    + cert.issuer_der().len()
                    + cert.serial_der().len()
                    + signature
                    + TOKEN_OVERHEAD
            })
            .max()
    }

    fn installed(&self, policy: &PolicyId) -> Option<Arc<Installed>> {
        self.units
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(policy)
            .cloned()
    }

    /// Answers one request. Never panics on any input; always returns a DER
    /// TimeStampResp.
    pub async fn respond(&self, request_der: &[u8]) -> Response {
        match self.issue(request_der).await {
            // Not counted here: a granted token may still be withheld by the caller (the
            // server's issuance log, when it cannot commit the record); the caller counts
            // what it sends.
            Ok(token) => match token::granted_response(&token.token_der) {
                Ok(der) => Response {
                    der,
                    outcome: Outcome::Granted(token),
                },
                Err(r) => self.reject(r),
            },
            Err(r) => self.reject(r),
        }
    }

    fn reject(&self, r: Rejection) -> Response {
        let fi = r.failure_info();
        // Debug only, even for our own failures: they come once per request, so under a
        // fault they would flood the log. The rejection goes back to the caller in
        // `Outcome::Rejected`, which logs state changes and rate-limited repeats (the
        // server: issuance.rs), and every one is counted below.
        tracing::debug!(rejection = %r, failinfo = fi.name(), "request rejected");
        metrics::counter!("hanko_tsa_rejections_total", "failinfo" => fi.name()).increment(1);
        Response {
            der: Self::failure_response(&r),
            outcome: Outcome::Rejected(r),
        }
    }

    /// The DER TimeStampResp for a rejection. The server calls it with
    /// [`Rejection::LogFailed`] when the issuance log could not take a token, and sends
    /// that instead of the token.
    pub fn failure_response(rejection: &Rejection) -> Vec<u8> {
        token::rejection_response(rejection)
    }

    async fn issue(&self, request_der: &[u8]) -> Result<IssuedToken, Rejection> {
        let req = CheckedRequest::parse(request_der, &self.config)?;
        let installed = self.installed(req.policy()).ok_or(Rejection::NoUnit)?;
        let unit = &installed.unit;

        let now = self.clock.now().map_err(Rejection::ClockUnavailable)?;
        if !unit.usable_at(now) {
            return Err(Rejection::UnitExpired);
        }
        let (gen_time, gen_time_asn) = token::gen_time(now, self.config.fraction_digits())?;

        let serial = self
            .serials
            .next_serial()
            .await
            .map_err(Rejection::SerialFailed)?;

        let tst_info_der = token::tst_info_der(
            &req,
            token::TstParams {
                policy: req.policy(),
                serial: &serial,
                gen_time: gen_time_asn,
                accuracy: token::accuracy(self.config.accuracy),
                tsa_name: installed.tsa_name.clone(),
                qualified: self.config.qualified,
            },
        )?;

        let chain: Vec<&[u8]> = if req.cert_req() {
            unit.chain().iter().map(|c| c.der()).collect()
        } else {
            Vec::new()
        };
        let params = SignedDataParams {
            econtent_type: hanko_pki::oid::TST_INFO,
            content: Content::Encapsulated(&tst_info_der),
            signer_certificate: unit.certificate().der(),
            certificates: &chain,
            ess_issuer_serial: self.config.ess_issuer_serial,
            signing_time: None,
            extra_signed_attributes: &[],
        };
        let signed = cms::sign_signed_data(&params, unit.signer().as_ref())
            .await
            .map_err(|e| match e {
                cms::CmsError::Sign(s) => Rejection::SignerFailed(s),
                other => Rejection::Internal(other.to_string()),
            })?;

        Ok(IssuedToken {
            serial,
            gen_time,
            policy: req.policy().clone(),
            hash_alg: req.hash_alg(),
            imprint: req.imprint().to_vec(),
            token_der: signed.content_info_der,
            tst_info_der,
        })
    }
}

/// Entry points for fuzzers. Not part of the API.
#[doc(hidden)]
pub mod internal {
    /// Fuzzing shims.
    pub mod fuzzing {
        use crate::{CheckedRequest, FailureInfo, TsaConfig, token};

        /// Decodes and checks a request with the default configuration, then encodes
        /// the rejection if any; panics only if an invariant is broken.
        pub fn decode_request(data: &[u8]) {
            match CheckedRequest::parse(data, &TsaConfig::default()) {
                Ok(req) => {
                    assert_eq!(req.imprint().len(), req.hash_alg().output_len());
                }
                Err(r) => {
                    let fi = r.failure_info();
                    assert!(FailureInfo::ALL.contains(&fi));
                    let der = token::rejection_response(&r);
                    let back: Result<rasn_cms::tsp::TimeStampResp, _> = rasn::der::decode(&der);
                    assert!(back.is_ok());
                }
            }
        }
    }
}
