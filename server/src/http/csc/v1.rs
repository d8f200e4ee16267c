//! CSC API 1.0.4 (`/csc/v1/...`): its JSON request shapes, read into the parameters of
//! [`super::methods`], as existing clients speak them (pyHanko's `csc_signer` among
//! them). Where v1 differs from v2:
//!
//! | method | v1 | v2 |
//! |---|---|---|
//! | `info` | `specs: "1.0.4.0"`, no `signatures/signDoc` | `specs: "2.0.0.0"` |
//! | `credentials/info` | `authMode` (always) | `auth: {"mode": ...}` |
//! | `credentials/authorize` | `hash` (no algorithm parameter) | `hashes` + `hashAlgorithmOID` |
//! | `signatures/signHash` | `hash`, `hashAlgo` | `hashes`, `hashAlgorithmOID` |
//! | `signatures/timestamp` | `hash`, `hashAlgo`, `nonce` | `hash`, `hashAlgorithmOID`, `nonce` |
//!
//! A v1 SAD bound to hashes is bound to their bytes alone (v1 names no algorithm when
//! authorising); `signHash` checks the algorithm against the key as in v2.

use serde::Deserialize;
use serde_json::Value;

use super::methods::{
    AuthorizeParams, AuthorizeShape, InfoRequest, SignHashParams, SignHashShape, TimestampParams,
    TimestampShape, Version,
};

/// The marker of this version's shapes.
#[derive(Debug)]
pub(super) struct V1;

impl super::methods::Shaped for V1 {
    const VERSION: Version = Version::V1;

    fn add_auth(_: &InfoRequest, out: &mut Value) {
        out["authMode"] = "implicit".into();
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuthorizeRequest {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    num_signatures: Option<u64>,
    hash: Option<Vec<String>>,
}

impl AuthorizeShape for AuthorizeRequest {
    fn params(&self) -> AuthorizeParams<'_> {
        AuthorizeParams {
            credential_id: self.credential_id.as_deref(),
            num_signatures: self.num_signatures,
            hashes: self.hash.as_deref(),
            hash_oid: None,
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
    hash: Option<Vec<String>>,
    hash_algo: Option<String>,
    sign_algo: Option<String>,
    sign_algo_params: Option<String>,
}

impl SignHashShape for SignHashRequest {
    fn params(&self) -> SignHashParams<'_> {
        SignHashParams {
            credential_id: self.credential_id.as_deref(),
            sad: self.sad.as_deref(),
            hashes: self.hash.as_deref(),
            hash_oid: self.hash_algo.as_deref(),
            sign_algo: self.sign_algo.as_deref(),
            sign_algo_params: self.sign_algo_params.as_deref(),
            operation_mode: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TimestampRequest {
    hash: Option<String>,
    hash_algo: Option<String>,
    nonce: Option<String>,
}

impl TimestampShape for TimestampRequest {
    fn params(&self) -> TimestampParams<'_> {
        TimestampParams {
            hash: self.hash.as_deref(),
            hash_oid: self.hash_algo.as_deref(),
            nonce: self.nonce.as_deref(),
        }
    }
}
