//! CSC API v2 (`/csc/v2/...`): its JSON request shapes, read into the parameters of
//! [`super::methods`]. v2 names the hash list `hashes` and its algorithm
//! `hashAlgorithmOID` (in `credentials/authorize` too, where binding a SAD to hashes
//! needs it), and describes a credential's authorisation as `auth: {"mode": ...}`.
//! `signatures/signDoc`, v2 only, is in `signdoc.rs`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::methods::{
    AuthorizeParams, AuthorizeShape, InfoRequest, SignHashParams, SignHashShape, TimestampParams,
    TimestampShape, Version,
};

/// The marker of this version's shapes.
#[derive(Debug)]
pub(super) struct V2;

impl super::methods::Shaped for V2 {
    const VERSION: Version = Version::V2;

    fn add_auth(req: &InfoRequest, out: &mut Value) {
        if req.auth_info != Some(false) {
            out["auth"] = json!({ "mode": "implicit" });
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    num_signatures: Option<u64>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
}

impl AuthorizeShape for AuthorizeRequest {
    fn params(&self) -> AuthorizeParams<'_> {
        AuthorizeParams {
            credential_id: self.credential_id.as_deref(),
            num_signatures: self.num_signatures,
            hashes: self.hashes.as_deref(),
            hash_oid: self.hash_algorithm_oid.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SignHashRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    sign_algo: Option<String>,
    sign_algo_params: Option<String>,
    operation_mode: Option<String>,
}

impl SignHashShape for SignHashRequest {
    fn params(&self) -> SignHashParams<'_> {
        SignHashParams {
            credential_id: self.credential_id.as_deref(),
            sad: self.sad.as_deref(),
            hashes: self.hashes.as_deref(),
            hash_oid: self.hash_algorithm_oid.as_deref(),
            sign_algo: self.sign_algo.as_deref(),
            sign_algo_params: self.sign_algo_params.as_deref(),
            operation_mode: self.operation_mode.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TimestampRequest {
    hash: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
    nonce: Option<String>,
}

impl TimestampShape for TimestampRequest {
    fn params(&self) -> TimestampParams<'_> {
        TimestampParams {
            hash: self.hash.as_deref(),
            hash_oid: self.hash_algorithm_oid.as_deref(),
            nonce: self.nonce.as_deref(),
        }
    }
}
