//! What the connection layer knows about the peer, handed to the routes as request
//! extensions (the seam between [`super::conn`], which owns connections and TLS, and the
//! client model in `crate::auth`, which decides who the peer is).
//!
//! - `axum::extract::ConnectInfo<SocketAddr>`: the peer's address, on every request.
//! - [`PeerCertificate`]: on a TLS connection whose client presented a certificate that
//!   verified against the configured client CA (mTLS), the DER of that leaf certificate.
//!   Absent on plain HTTP and on TLS connections without a client certificate. Its
//!   presence means the chain verified; the client model only maps it to a client.

use std::sync::Arc;

/// The DER of the verified TLS client certificate (the leaf), one per connection, shared
/// by every request on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<[u8]>);

impl PeerCertificate {
    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}
