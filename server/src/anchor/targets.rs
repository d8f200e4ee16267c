//! The anchor targets: one trait, so that more kinds (public ledgers) plug in later, and
//! the two kinds there are: the server's own TSA (`self`) and an external RFC 3161 TSA.
//!
//! A target is given a batch root and answers with a DER TimeStampToken (CMS
//! ContentInfo) whose messageImprint is that root, or an error whose message is safe to
//! show in the batch API (a URL and a reason, never a credential).

use std::fmt;
use std::sync::Arc;

use hanko_pki::{BoxFuture, HashAlgorithm};
use hanko_seal::TimeStamper as _;

use crate::external_tsa::ExternalTsa;
use crate::issuance::Issuer;

/// Why one anchoring attempt failed; shown as the anchor's `last_error`.
#[derive(Debug, Clone)]
pub struct AnchorError(pub String);

impl fmt::Display for AnchorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AnchorError {}

/// Something that time-stamps batch roots.
pub trait AnchorTarget: Send + Sync + fmt::Debug {
    /// The configured name (`self` for the own TSA).
    fn name(&self) -> &str;

    /// A TimeStampToken (DER ContentInfo) over `root`, a digest made with `hash`.
    fn anchor<'a>(
        &'a self,
        hash: HashAlgorithm,
        root: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, AnchorError>>;
}

/// The own TSA, in-process through the HSM. Its tokens are issued tokens: logged (kind
/// `archive-stamp`, client `anchor`) before they are returned.
#[derive(Debug)]
pub struct SelfTarget {
    /// The server's issuer.
    pub issuer: Arc<Issuer>,
}

/// The client name the own TSA's archive time-stamps are logged under.
pub const ANCHOR_CLIENT: &str = "anchor";

impl AnchorTarget for SelfTarget {
    fn name(&self) -> &str {
        crate::config::SELF_TARGET
    }

    fn anchor<'a>(
        &'a self,
        hash: HashAlgorithm,
        root: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, AnchorError>> {
        Box::pin(async move {
            self.issuer
                .issue_archive_stamp(hash, root, ANCHOR_CLIENT)
                .await
                .map(|issued| issued.token.token_der)
                .map_err(|r| AnchorError(format!("own TSA: {r}")))
        })
    }
}

/// An external RFC 3161 TSA (`[[anchor.external]]`), http or https, its tokens checked
/// against its `ca` when one is configured.
#[derive(Debug)]
pub struct ExternalTarget {
    /// The configured name.
    pub name: String,
    /// The TSA.
    pub tsa: ExternalTsa,
}

impl AnchorTarget for ExternalTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn anchor<'a>(
        &'a self,
        hash: HashAlgorithm,
        root: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, AnchorError>> {
        Box::pin(async move {
            self.tsa
                .time_stamp(hash, root)
                .await
                .map_err(|e| AnchorError(e.to_string()))
        })
    }
}
