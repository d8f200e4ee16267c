//! A test hook, honoured only by `serve --dev`: `HANKO_FAULT_ANCHOR_PAUSE` names a point
//! in batch closing or anchoring where the anchoring tasks wait until shutdown, after logging
//! "anchor fault point X reached", so that a crash test can SIGKILL the process exactly
//! there (issue #15):
//!
//! - `before-close`: the batch's tree is computed, its root not yet stored;
//! - `after-close`: the batch and its pending anchors are committed, no anchor attempted
//!   (with this point the target tasks attempt none at all);
//! - `during-anchor`: a target returned its token over the root (the own TSA's archive
//!   time-stamp is already logged), the anchor is not yet stored as done;
//! - `renewal-planned`: a renewal run is planned (its chains held), no token asked for
//!   (issue #16; only the renewal scheduler pauses);
//! - `renewal-stamped`: the run's token is issued and logged, not yet stored.
//!
//! Production (`serve` without `--dev`) refuses to start while it is set, so that a
//! leftover variable cannot stop anchoring unnoticed. Unset, the hook is one comparison of
//! an `Option` per close and per attempt.

use tokio::sync::watch;

/// The environment variable naming the point.
pub const FAULT_ENV: &str = "HANKO_FAULT_ANCHOR_PAUSE";

/// Where the anchoring pauses (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    BeforeClose,
    AfterClose,
    DuringAnchor,
    RenewalPlanned,
    RenewalStamped,
}

impl FaultPoint {
    const ALL: [FaultPoint; 5] = [
        FaultPoint::BeforeClose,
        FaultPoint::AfterClose,
        FaultPoint::DuringAnchor,
        FaultPoint::RenewalPlanned,
        FaultPoint::RenewalStamped,
    ];

    /// The name `HANKO_FAULT_ANCHOR_PAUSE` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultPoint::BeforeClose => "before-close",
            FaultPoint::AfterClose => "after-close",
            FaultPoint::DuringAnchor => "during-anchor",
            FaultPoint::RenewalPlanned => "renewal-planned",
            FaultPoint::RenewalStamped => "renewal-stamped",
        }
    }

    /// The point `HANKO_FAULT_ANCHOR_PAUSE` names, if set: refused without `dev`, and
    /// any value but the points' names refused.
    pub fn from_env(dev: bool) -> anyhow::Result<Option<FaultPoint>> {
        let v = std::env::var_os(FAULT_ENV);
        Self::parse(v.as_ref().map(|v| v.to_string_lossy()).as_deref(), dev)
    }

    fn parse(value: Option<&str>, dev: bool) -> anyhow::Result<Option<FaultPoint>> {
        let Some(v) = value else {
            return Ok(None);
        };
        anyhow::ensure!(
            dev,
            "{FAULT_ENV} is a test hook honoured only by `hanko serve --dev`; unset it"
        );
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == v)
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{FAULT_ENV}={v:?}: expected before-close, after-close, during-anchor, \
                     renewal-planned or renewal-stamped"
                )
            })
    }
}

/// At `here`: if it is the configured point, logs that it was reached and waits until
/// shutdown is signalled (a crash test kills the process meanwhile); otherwise returns at
/// once.
pub(super) async fn pause_at(
    configured: Option<FaultPoint>,
    here: FaultPoint,
    shutdown: &watch::Receiver<bool>,
) {
    if configured != Some(here) {
        return;
    }
    tracing::warn!(
        point = here.as_str(),
        "anchor fault point {} reached ({FAULT_ENV}); pausing",
        here.as_str()
    );
    let _ = shutdown.clone().wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn honoured_only_in_dev_and_only_its_names() {
        assert_eq!(FaultPoint::parse(None, false).unwrap(), None);
        assert_eq!(FaultPoint::parse(None, true).unwrap(), None);
        for p in FaultPoint::ALL {
            assert_eq!(FaultPoint::parse(Some(p.as_str()), true).unwrap(), Some(p));
            let e = FaultPoint::parse(Some(p.as_str()), false).unwrap_err();
            assert!(e.to_string().contains("only by `hanko serve --dev`"), "{e}");
        }
        let e = FaultPoint::parse(Some("mid-close"), true).unwrap_err();
        assert!(e.to_string().contains("expected before-close"), "{e}");
    }
}
