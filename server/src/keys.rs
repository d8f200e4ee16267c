//! Loading the signing keys at start-up: the gate of CONFORMANCE 31, 32, 39 and 40.
//!
//! For every `[[keys]]` entry, in order, and refusing to start at the first failure:
//!
//! ```text
//!   chain PEM ──load──> [leaf, issuers..]  each signed by the next (pki::cert)
//!   leaf ──check_tsa_certificate / check_seal_certificate(now)
//!   leaf ──check_signing_key_policy: RSA below 3072 bits refused (ETSI TS 119 312;
//!          keys.allow_rsa_2048 = true: a warning, for the transition)
//!   issuers ──check_issuing_ca(now): basicConstraints cA, pathLen, keyCertSign, validity
//!   token public key <──check_key_matches── leaf
//!   token private key: CKA_SENSITIVE, !CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
//!                      CKA_NEVER_EXTRACTABLE (generated and kept inside the HSM; a
//!                      token that does not report the last two is refused unless
//!                      keys.allow_unreported_protection = true); CKA_DECRYPT,
//!                      CKA_UNWRAP, CKA_DERIVE true: a warning (a signing key
//!                      should do nothing else; `hanko dev-init` makes them false)
//!   HsmSigner pool ──sign a probe──> verify against the leaf's key (pki::verify)
//! ```
//!
//! The certificate checks run again on every `/readyz` (`not_ready_reasons`): a leaf or
//! an issuing CA that expires while the process runs takes the node out of rotation.
//!
//! Only then is the key put into [`AppState`](crate::state::AppState). What this module
//! does not do: choose which key signs a request (the TSA does), or reload keys at run
//! time (restart the server to roll over).

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use hanko_hsm::{Hsm, HsmSigner, PoolConfig, ProtectionHistory};
use hanko_pki::Signer;
use hanko_pki::cert::{
    CertError, Certificate, check_issuing_ca, check_key_matches, check_seal_certificate,
    check_signing_key_policy, check_tsa_certificate, load_pem_chain,
};

use crate::config::{KeySpec, KeyUsage};
use crate::state::SigningKey;

/// The profile check for a key's certificate at `now`.
pub fn check_certificate(
    usage: KeyUsage,
    cert: &Certificate,
    now: SystemTime,
) -> Result<(), CertError> {
    match usage {
        KeyUsage::Tsa => check_tsa_certificate(cert, now),
        KeyUsage::Seal => check_seal_certificate(cert, now),
    }
}

/// Reads and checks a chain file: leaf first, each certificate issued by the next.
pub fn load_chain(spec: &KeySpec, now: SystemTime) -> anyhow::Result<Vec<Certificate>> {
    let pem = std::fs::read_to_string(&spec.chain).with_context(|| {
        format!(
            "key \"{}\": cannot read chain {}",
            spec.label,
            spec.chain.display()
        )
    })?;
    let chain = load_pem_chain(&pem)
        .with_context(|| format!("key \"{}\": chain {}", spec.label, spec.chain.display()))?;
    for pair in chain.windows(2) {
        pair[0].verify_issued_by(&pair[1]).with_context(|| {
            format!(
                "key \"{}\": in {}, {:?} is not issued by the next certificate {:?}",
                spec.label,
                spec.chain.display(),
                pair[0].subject_string(),
                pair[1].subject_string()
            )
        })?;
    }
    let Some(leaf) = chain.first() else {
        bail!(
            "key \"{}\": chain {} is empty",
            spec.label,
            spec.chain.display()
        );
    };
    check_certificate(spec.usage, leaf, now).with_context(|| {
        format!(
            "key \"{}\": certificate {:?} ({}) refused",
            spec.label,
            leaf.subject_string(),
            spec.chain.display()
        )
    })?;
    if let Err(e) = check_signing_key_policy(leaf) {
        if !spec.allow_rsa_2048 {
            return Err(anyhow::Error::new(e).context(format!(
                "key \"{}\": certificate {:?} ({}) refused; an existing RSA-2048 unit may \
                 run on during its replacement with keys.allow_rsa_2048 = true",
                spec.label,
                leaf.subject_string(),
                spec.chain.display()
            )));
        }
        tracing::warn!(key = %spec.label, error = %e, "keys.allow_rsa_2048: starting with a key below the algorithm policy; replace it");
        metrics::gauge!("hanko_key_weak_algorithm", "key" => spec.label.clone()).set(1.0);
    }
    check_issuers(&chain, now)
        .with_context(|| format!("key \"{}\": chain {}", spec.label, spec.chain.display()))?;
    Ok(chain)
}

/// What the keys' gauges need of a loaded key: plain data, so that the metrics task
/// holds no signer (a pool kept alive by it would outlive the shutdown).
#[derive(Clone, Debug)]
pub struct KeyGauges {
    key: String,
    usage: &'static str,
    algorithm: String,
    signer_not_after: SystemTime,
    issuer_not_after: Option<SystemTime>,
}

impl KeyGauges {
    /// The gauges' view of `k`.
    pub fn of(k: &SigningKey) -> KeyGauges {
        KeyGauges {
            key: k.label().to_owned(),
            usage: k.usage().as_str(),
            algorithm: k.signer().algorithm().name(),
            signer_not_after: k.certificate().not_after(),
            issuer_not_after: k.chain().iter().skip(1).map(Certificate::not_after).min(),
        }
    }
}

/// The keys' gauges (issue #18), set every few seconds by the metrics upkeep:
///
/// - `hanko_key_certificate_expires_in_seconds{key, certificate="signer"|"issuer"}`:
///   seconds until the key's certificate, and until the first of its issuing CAs,
///   expires (negative once expired); alert well before 0 (a unit's replacement takes
///   weeks of enrolment);
/// - `hanko_key_info{key, usage, algorithm}` 1 for every key loaded (with
///   `hanko_tsa_unit_key{policy, key}`, set as the TSA installs its units: which key
///   each unit signs with now).
pub fn export_key_metrics(keys: &[KeyGauges], now: SystemTime) {
    let left = |t: SystemTime| match t.duration_since(now) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    for k in keys {
        metrics::gauge!("hanko_key_certificate_expires_in_seconds", "key" => k.key.clone(), "certificate" => "signer")
            .set(left(k.signer_not_after));
        if let Some(first) = k.issuer_not_after {
            metrics::gauge!("hanko_key_certificate_expires_in_seconds", "key" => k.key.clone(), "certificate" => "issuer")
                .set(left(first));
        }
        metrics::gauge!(
            "hanko_key_info",
            "key" => k.key.clone(),
            "usage" => k.usage,
            "algorithm" => k.algorithm.clone()
        )
        .set(1.0);
    }
}

/// Checks every certificate above the leaf as an issuing CA valid at `now`
/// (`pki::cert::check_issuing_ca`); the error names the certificate.
pub fn check_issuers(chain: &[Certificate], now: SystemTime) -> anyhow::Result<()> {
    for (below, ca) in chain.iter().skip(1).enumerate() {
        check_issuing_ca(ca, now, below)
            .with_context(|| format!("issuing CA {:?} refused", ca.subject_string()))?;
    }
    Ok(())
}

/// CONFORMANCE 39: the private key must be sensitive and non-extractable, and must have
/// been so since it was generated (the rule is `hanko_hsm::KeyProtection::production_check`).
/// A token that does not report the history is refused unless `allow_unreported`; a key
/// that may also decrypt, unwrap or derive is accepted with a warning.
pub(crate) fn check_private_key_protection(
    hsm: &Hsm,
    label: &str,
    allow_unreported: bool,
) -> anyhow::Result<()> {
    let protection = hsm.key_protection(label)?;
    let history = protection.production_check()?;
    if history == ProtectionHistory::NotReported {
        if !allow_unreported {
            bail!(
                "key \"{label}\": token \"{}\" does not report whether the private key was \
                 always sensitive and never extractable (CKA_ALWAYS_SENSITIVE, \
                 CKA_NEVER_EXTRACTABLE), so nothing shows it never left the HSM; set \
                 keys.allow_unreported_protection = true for this key only if the HSM's own \
                 records show it",
                hsm.token_label()
            );
        }
        tracing::warn!(
            key = label,
            "token does not report CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE (allowed by keys.allow_unreported_protection)"
        );
    }
    let other_uses = protection.other_uses();
    if !other_uses.is_empty() {
        tracing::warn!(
            key = label,
            uses = %other_uses.join(", "),
            "the signing key may also be used for other operations; a key generated by hanko has them off"
        );
    }
    Ok(())
}

/// Loads and checks every configured key; see the module documentation.
///
/// The PKCS#11 calls block; call this from `spawn_blocking` or before serving.
pub async fn load_keys(
    hsm: &Hsm,
    specs: &[KeySpec],
    pool: &PoolConfig,
) -> anyhow::Result<(Vec<SigningKey>, SigningBacklog)> {
    let now = SystemTime::now();
    let mut keys = Vec::new();
    let mut backlog = SigningBacklog(Vec::new());
    for spec in specs {
        let chain = load_chain(spec, now)?;
        let Some(leaf) = chain.first() else {
            bail!("key \"{}\": empty chain", spec.label);
        };
        let spki = hsm.public_key(&spec.label)?.with_context(|| {
            format!(
                "key \"{}\": no public key with this label in token \"{}\"",
                spec.label,
                hsm.token_label()
            )
        })?;
        check_key_matches(leaf, &spki).with_context(|| {
            format!(
                "key \"{}\": the certificate in {} is not for the token's key",
                spec.label,
                spec.chain.display()
            )
        })?;
        check_private_key_protection(hsm, &spec.label, spec.allow_unreported_protection)?;
        let signer = Arc::new(hsm.signer(&spec.label, spec.algorithm, pool.clone())?);
        // One probe signature, checked against the certificate's key: proves the key,
        // the mechanism and the certificate belong together before anything is issued.
        let probe = b"hanko start-up probe";
        let sig = signer
            .sign(probe)
            .await
            .with_context(|| format!("key \"{}\": probe signature", spec.label))?;
        hanko_pki::verify::verify(leaf.spki_der(), spec.algorithm, probe, &sig).with_context(
            || {
                format!(
                    "key \"{}\": probe signature does not verify against the certificate",
                    spec.label
                )
            },
        )?;
        tracing::info!(
            key = %spec.label,
            usage = spec.usage.as_str(),
            alg = %spec.algorithm,
            subject = %leaf.subject_string(),
            not_after = %leaf.parsed().tbs_certificate().validity().not_after,
            chain_len = chain.len(),
            "signing key loaded: certificate checked, key non-extractable, probe signature verified"
        );
        backlog.0.push(Arc::downgrade(&signer));
        let signer: Arc<dyn Signer> = signer;
        let key = SigningKey::new(spec.label.clone(), spec.usage, signer, chain)
            .with_context(|| format!("key \"{}\": empty chain", spec.label))?;
        keys.push(key);
    }
    Ok((keys, backlog))
}

/// The signing pools as the issuance log's upstream ([`hanko_store::Upstream`]): busy
/// while some pool has at least one request per worker queued behind the ones being
/// signed, so a batch held open for more records costs the HSM nothing. When no pool has,
/// the log commits at once, and the clients it releases refill the queues. (2, 3 and 4
/// per worker were measured too: smaller batches, released sooner, and the signers idled
/// more; benches/RESULTS.md, 2026-11-25.) Any pool counts: the pools share the CPU and
/// the token, so a backlogged seal key also lets time-stamp records wait: at most
/// `store.linger_ms`, and at most `LINGER_SHARE_OF_QUEUE` of the time its queue will
/// take.
///
/// It holds the pools weakly: the store outlives the application state at shutdown, and
/// a pool kept alive by it would stop its workers (and finalize the PKCS#11 module) only
/// while the process is already exiting.
#[derive(Debug, Clone)]
pub struct SigningBacklog(Vec<Weak<HsmSigner>>);

/// The share of the time its queued signatures will take anyway for which the log may
/// hold a batch open (at most `store.linger_ms`). Saturated with RSA-3072 on SoftHSM the
/// queue holds ~30 rounds of 2.2 ms, so a batch is held the whole 5 ms and the commits'
/// CPU goes to the signers (+5 %); at 80 % of capacity it holds a round or two, and a
/// whole 5 ms on those records had doubled the p99 (10 to 19-23 ms); P-256 queues rounds
/// of 0.15 ms, and lost 4 % to a whole 5 ms (benches/RESULTS.md 2026-12-04).
const LINGER_SHARE_OF_QUEUE: f64 = 0.25;

impl SigningBacklog {
    /// The live pools with their queued rounds (requests queued ÷ workers).
    fn rounds(&self) -> impl Iterator<Item = (Arc<HsmSigner>, f64)> + '_ {
        self.0.iter().filter_map(Weak::upgrade).map(|s| {
            let rounds = s.backlog() as f64 / s.pool_config().workers.max(1) as f64;
            (s, rounds)
        })
    }
}

impl hanko_store::Upstream for SigningBacklog {
    fn busy(&self) -> bool {
        self.rounds().any(|(_, r)| r >= 1.0)
    }

    fn linger_bound(&self, linger: Duration) -> Duration {
        let queued = self
            .rounds()
            .map(|(s, r)| s.recent_call_time().mul_f64(r))
            .max()
            .unwrap_or_default();
        queued.mul_f64(LINGER_SHARE_OF_QUEUE).min(linger)
    }
}
