//! The parts `hanko serve` builds from its configuration once the keys are loaded: the
//! sealer's options and visible seals, the verification page's verifier, the evidence
//! renewer, anchoring and its renewal scheduler, and the HTTPS key in the HSM.

use std::sync::Arc;

use anyhow::Context as _;
use hanko_hsm::Hsm;

use crate::config::{self, Config};
use crate::state::AppState;
use crate::visible_seal::VisibleSeals;
use crate::{http, issuance, seal};

/// The seal credentials' metadata and the external TSA of B-T seals, from `cfg`.
pub(super) fn sealer_options(cfg: &Config) -> seal::SealerOptions {
    let metadata = cfg
        .keys
        .iter()
        .filter_map(|k| Some((k.label.clone(), k.seal.clone()?)))
        .collect();
    let external_tsa = cfg.seal_tsa.as_ref().map(|s| {
        tracing::info!(url = %s.url, anchors = s.trust_anchors.len(),
            "B-T seals are stamped by an external TSA");
        Arc::new(crate::external_tsa::ExternalTsa::new(s)) as Arc<dyn hanko_seal::TimeStamper>
    });
    seal::SealerOptions {
        metadata,
        external_tsa,
        rollover: None,
    }
}

/// Each seal credential's visible PDF seal (its `[keys.seal]` image and display name),
/// with the font of `seal.font`.
pub(super) fn visible_seals(sealer: &seal::Sealer, cfg: &Config) -> anyhow::Result<VisibleSeals> {
    VisibleSeals::for_credentials(
        &sealer.loaded_credentials(),
        cfg.seal_font.as_deref(),
        cfg.dev,
    )
    .context("visible seals")
}

/// The verification page's verifier: `[verify] trust_anchors`, or the server's own
/// roots: with `--dev` the dev root (`dev-pki/root.pem`), else the top of each key's
/// chain; and `seal.tsa_ca` and each `[[anchor.external]]`'s `ca` (their archive
/// time-stamps in evidence records).
pub(super) fn verifier(cfg: &Config, keys: &[crate::state::SigningKey]) -> crate::verify::Verifier {
    let v = &cfg.verify;
    let dev_root = cfg
        .dev
        .then(|| std::fs::read_to_string(cfg.data_dir.join("dev-pki").join("root.pem")).ok())
        .flatten()
        .and_then(|pem| hanko_pki::cert::load_pem_chain(&pem).ok());
    let anchors = match (&v.trust_anchors, dev_root) {
        (Some(a), _) => a.clone(),
        (None, dev_root) => {
            let mut extra = cfg
                .seal_tsa
                .as_ref()
                .map(|t| t.trust_anchors.clone())
                .unwrap_or_default();
            for e in &cfg.anchor.external {
                extra.extend(e.tsa.trust_anchors.iter().cloned());
            }
            match dev_root {
                Some(root) => {
                    extra.extend(root);
                    extra
                }
                None => crate::verify::default_anchors(keys.iter().map(|k| k.chain()), &extra),
            }
        }
    };
    tracing::info!(
        anchors = anchors.len(),
        max_upload_bytes = v.max_upload_bytes,
        "verification page"
    );
    crate::verify::Verifier::new(anchors, v.max_upload_bytes, v.max_in_flight)
}

/// The renewal of evidence records archives hold (`POST /api/v1/evidence/renew`): the
/// own TSA under `[renewal]`, trusting the top of each TSA key's chain and
/// `renewal.trust_anchors`; `None` without a TSA.
pub(super) fn renewer(
    cfg: &Config,
    keys: &[crate::state::SigningKey],
    issuer: Option<&Arc<issuance::Issuer>>,
) -> Option<Arc<crate::renewal::Renewer>> {
    let tsa_chains = keys
        .iter()
        .filter(|k| k.usage() == crate::config::KeyUsage::Tsa)
        .map(|k| k.chain());
    let roots = crate::verify::default_anchors(tsa_chains, &cfg.renewal.trust_anchors);
    tracing::info!(roots = roots.len(), "evidence renewal trust anchors");
    issuer.map(|i| {
        Arc::new(crate::renewal::Renewer::new(
            i.clone(),
            cfg.renewal.policy.clone(),
            roots,
        ))
    })
}

/// The start-up steps inside the runtime, then serving until a signal, then release.
/// Starts Merkle anchoring (`[anchor]`): the batcher and one task per target, the own
/// TSA (`self`) first. `None` when disabled. Refuses the test hook
/// `HANKO_FAULT_ANCHOR_PAUSE` without `--dev` (see `anchor::FaultPoint`).
pub(super) fn start_anchoring(
    cfg: &Config,
    state: &AppState,
    store: &hanko_store::Store,
) -> anyhow::Result<Option<crate::anchor::Anchoring>> {
    use crate::anchor::{AnchorTarget, ExternalTarget, FaultPoint, SelfTarget};
    let fault = FaultPoint::from_env(cfg.dev)?;
    if !cfg.anchor.enabled {
        tracing::info!("anchoring is disabled ([anchor] enabled = false)");
        return Ok(None);
    }
    if let Some(p) = fault {
        tracing::warn!(
            point = p.as_str(),
            "test hook: anchoring pauses at {}",
            p.as_str()
        );
    }
    let mut targets: Vec<Arc<dyn AnchorTarget>> = Vec::new();
    if cfg.anchor.self_target && cfg.store.durability == config::Durability::None {
        // Its tokens would not be logged: never an unlogged token.
        tracing::warn!(
            "store.durability = \"none\": the own TSA does not anchor (self target off)"
        );
    } else if cfg.anchor.self_target
        && let Some(issuer) = &state.issuer
    {
        targets.push(Arc::new(SelfTarget {
            issuer: issuer.clone(),
        }));
    }
    for e in &cfg.anchor.external {
        tracing::info!(target = %e.name, url = %e.tsa.url, "anchor target: external TSA");
        targets.push(Arc::new(ExternalTarget {
            name: e.name.clone(),
            tsa: crate::external_tsa::ExternalTsa::new(&e.tsa),
        }));
    }
    Ok(Some(crate::anchor::spawn(
        store.clone(),
        &cfg.anchor,
        targets,
        fault,
    )))
}

/// Starts the renewal scheduler (issue #16) where anchoring runs and the own TSA can
/// issue logged archive time-stamps; `None` otherwise.
pub(super) fn start_renewal(
    cfg: &Config,
    state: &AppState,
    store: &hanko_store::Store,
) -> anyhow::Result<Option<crate::anchor::renewal::Renewal>> {
    use crate::anchor::renewal;
    let fault = crate::anchor::FaultPoint::from_env(cfg.dev)?;
    let Some(issuer) = state.issuer.clone() else {
        return Ok(None);
    };
    if !cfg.anchor.enabled || cfg.store.durability == config::Durability::None {
        return Ok(None);
    }
    // The scheduler renews as the renewal API decides: `renewal.time_stamp_before_days`.
    let settings = renewal::RenewalSettings::new(cfg.dev, cfg.renewal.policy.time_stamp_before);
    Ok(Some(renewal::spawn(store.clone(), issuer, settings, fault)))
}

/// The HTTPS listener's key in the HSM, with `tls.key_label`: its own signing pool
/// (`http::tls_hsm`), checked like the signing keys before anything is served.
pub(super) async fn load_tls_key(
    cfg: &Config,
    hsm: &Hsm,
) -> anyhow::Result<Option<Arc<http::tls_hsm::HsmTlsKey>>> {
    let Some(settings) = &cfg.tls else {
        return Ok(None);
    };
    let config::TlsKey::Hsm(label) = &settings.key else {
        return Ok(None);
    };
    let pool = http::tls_hsm::pool_config(&cfg.pool, settings.handshake_timeout);
    let key = http::tls_hsm::HsmTlsKey::load(hsm, label, pool)
        .await
        .context("[tls]")?;
    Ok(Some(key))
}
