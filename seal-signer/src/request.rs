//! From what a caller asks for to a [`SealRequest`], or an [`Error`].
//!
//! Two stages, as in `hanko_tsa::request`: [`RawSealRequest`] is what an edge (the
//! binary endpoint's query string, CSC `signDoc` JSON, the CLI) could parse without
//! judging it; [`SealRequest::check`] decides once whether Hanko will seal it, and
//! code after this module only sees the checked type. The checks that need the
//! credential (its hash algorithm, its certificate's validity) happen when sealing.
//!
//! Order of checks (the first failure wins): packaging against content, hash
//! algorithm, digest length, mime type, content description.

use std::fmt;
use std::str::FromStr;

use hanko_pki::HashAlgorithm;
use hanko_pki::oid::{self, ObjectIdentifier};

use crate::error::Error;

/// The baseline level of a seal: CAdES (ETSI EN 319 122-1 §6) and PAdES (EN 319 142-1
/// §6) name the same two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// B-B: the signature with its signed attributes.
    BB,
    /// B-T: B-B plus a signature-time-stamp over the signature value.
    BT,
}

impl Level {
    /// The name as ETSI writes it: `B-B`, `B-T`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BB => "B-B",
            Self::BT => "B-T",
        }
    }
}

impl FromStr for Level {
    type Err = Error;

    /// `B-B` or `B-T` (ASCII case-insensitive; `BB`, `BT` and a `CAdES-` or `PAdES-`
    /// prefix also accepted, as clients write them).
    fn from_str(s: &str) -> Result<Self, Error> {
        let n = s.to_ascii_uppercase();
        let n = n
            .strip_prefix("CADES-")
            .or_else(|| n.strip_prefix("PADES-"))
            .unwrap_or(&n);
        match n {
            "B-B" | "BB" => Ok(Self::BB),
            "B-T" | "BT" => Ok(Self::BT),
            _ => Err(Error::UnknownLevel(s.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the document goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Packaging {
    /// Detached: the CMS carries no eContent; the document travels beside the `.p7s`.
    #[default]
    Detached,
    /// Enveloping (attached): the document is the CMS eContent. For small payloads.
    Enveloping,
}

impl Packaging {
    /// `detached` or `enveloping`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Detached => "detached",
            Self::Enveloping => "enveloping",
        }
    }
}

/// An RFC 5126 §5.11.1 commitment type: what the sealing organisation commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommitmentType {
    /// The organisation created, approved and sent the data: the usual one for a seal.
    ProofOfOrigin,
    /// The organisation received the data.
    ProofOfReceipt,
    /// A trusted service delivered the data.
    ProofOfDelivery,
    /// The organisation sent the data (without necessarily creating it).
    ProofOfSender,
    /// The organisation approved the content.
    ProofOfApproval,
    /// The organisation created the data (without necessarily approving or sending it).
    ProofOfCreation,
}

impl CommitmentType {
    /// All six, in OID order.
    pub const ALL: [Self; 6] = [
        Self::ProofOfOrigin,
        Self::ProofOfReceipt,
        Self::ProofOfDelivery,
        Self::ProofOfSender,
        Self::ProofOfApproval,
        Self::ProofOfCreation,
    ];

    /// The OID (id-cti-ets-*), from [`hanko_pki::oid`].
    pub const fn oid(self) -> ObjectIdentifier {
        match self {
            Self::ProofOfOrigin => oid::CTI_PROOF_OF_ORIGIN,
            Self::ProofOfReceipt => oid::CTI_PROOF_OF_RECEIPT,
            Self::ProofOfDelivery => oid::CTI_PROOF_OF_DELIVERY,
            Self::ProofOfSender => oid::CTI_PROOF_OF_SENDER,
            Self::ProofOfApproval => oid::CTI_PROOF_OF_APPROVAL,
            Self::ProofOfCreation => oid::CTI_PROOF_OF_CREATION,
        }
    }

    /// The kebab-case name: `proof-of-origin`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Self::ProofOfOrigin => "proof-of-origin",
            Self::ProofOfReceipt => "proof-of-receipt",
            Self::ProofOfDelivery => "proof-of-delivery",
            Self::ProofOfSender => "proof-of-sender",
            Self::ProofOfApproval => "proof-of-approval",
            Self::ProofOfCreation => "proof-of-creation",
        }
    }
}

impl FromStr for CommitmentType {
    type Err = Error;

    /// The name ([`CommitmentType::name`]) or the dotted OID.
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s || c.oid().to_string() == s)
            .ok_or_else(|| Error::UnknownCommitmentType(s.chars().take(64).collect()))
    }
}

/// The content as the caller gave it.
#[derive(Clone, Copy, Debug)]
pub enum RawContent<'a> {
    /// The document itself; Hanko hashes it.
    Document(&'a [u8]),
    /// A digest the caller computed.
    Digest {
        /// Dotted OID of the hash algorithm (CSC `hashAlgorithmOID`).
        hash_oid: &'a str,
        /// The digest.
        digest: &'a [u8],
    },
}

/// A seal request as an edge parsed it, before any judgement.
#[derive(Clone, Copy, Debug)]
pub struct RawSealRequest<'a> {
    /// B-B or B-T.
    pub level: Level,
    /// Detached or enveloping.
    pub packaging: Packaging,
    /// The document or its digest.
    pub content: RawContent<'a>,
    /// The document's mime type (the mime-type signed attribute), e.g.
    /// `application/pdf`.
    pub mime_type: Option<&'a str>,
    /// A short description of the document (the content-hints signed attribute).
    pub content_description: Option<&'a str>,
    /// The commitment-type-indication signed attribute; `None` leaves it out.
    pub commitment: Option<CommitmentType>,
}

impl<'a> RawSealRequest<'a> {
    /// A detached B-B request over `document` with no optional attribute.
    pub fn document(document: &'a [u8]) -> Self {
        Self {
            level: Level::BB,
            packaging: Packaging::Detached,
            content: RawContent::Document(document),
            mime_type: None,
            content_description: None,
            commitment: None,
        }
    }

    /// A detached B-B request over a digest the caller computed with the hash
    /// algorithm `hash_oid` (dotted), with no optional attribute.
    pub fn digest(hash_oid: &'a str, digest: &'a [u8]) -> Self {
        Self {
            content: RawContent::Digest { hash_oid, digest },
            ..Self::document(&[])
        }
    }
}

/// The checked content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// The document.
    Document(&'a [u8]),
    /// A digest of the right length for its algorithm.
    Digest {
        /// The hash algorithm.
        alg: HashAlgorithm,
        /// The digest, `alg.output_len()` bytes.
        digest: &'a [u8],
    },
}

/// What tells a relying party what the document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentHint {
    /// mime-type (0.4.0.1733.2.1): `type/subtype[; parameters]`.
    MimeType(String),
    /// content-hints (RFC 2634 §2.9) with contentType id-data and this description.
    Description(String),
}

/// A request Hanko will seal: see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRequest<'a> {
    level: Level,
    packaging: Packaging,
    content: Content<'a>,
    hint: Option<ContentHint>,
    commitment: Option<CommitmentType>,
}

/// Longest mime type or description accepted, in bytes.
pub const MAX_HINT_LEN: usize = 255;

impl<'a> SealRequest<'a> {
    /// Checks a raw request.
    pub fn check(raw: RawSealRequest<'a>) -> Result<Self, Error> {
        let content = match raw.content {
            RawContent::Document(bytes) => Content::Document(bytes),
            RawContent::Digest { hash_oid, digest } => {
                if raw.packaging == Packaging::Enveloping {
                    return Err(Error::EnvelopingNeedsDocument);
                }
                let alg = HashAlgorithm::from_oid(hash_oid).map_err(Error::UnsupportedHash)?;
                if digest.len() != alg.output_len() {
                    return Err(Error::DigestLength {
                        alg,
                        expected: alg.output_len(),
                        got: digest.len(),
                    });
                }
                Content::Digest { alg, digest }
            }
        };
        let hint = match (raw.mime_type, raw.content_description) {
            (Some(_), Some(_)) => return Err(Error::MimeTypeAndDescription),
            (Some(m), None) => Some(ContentHint::MimeType(check_mime_type(m)?)),
            (None, Some(d)) => Some(ContentHint::Description(check_description(d)?)),
            (None, None) => None,
        };
        Ok(Self {
            level: raw.level,
            packaging: raw.packaging,
            content,
            hint,
            commitment: raw.commitment,
        })
    }

    /// B-B or B-T.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Detached or enveloping (never enveloping for a digest).
    pub fn packaging(&self) -> Packaging {
        self.packaging
    }

    /// The document or its checked digest.
    pub fn content(&self) -> Content<'a> {
        self.content
    }

    /// The mime type or description, if any.
    pub fn hint(&self) -> Option<&ContentHint> {
        self.hint.as_ref()
    }

    /// The commitment type, if any.
    pub fn commitment(&self) -> Option<CommitmentType> {
        self.commitment
    }
}

/// RFC 6838 §4.2 restricted-name: 1..127 of ALPHA / DIGIT / `!#$&-^_.+`, starting with
/// ALPHA or DIGIT.
fn restricted_name(s: &str) -> bool {
    (1..=127).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

fn check_mime_type(m: &str) -> Result<String, Error> {
    let bad = || Error::BadMimeType(m.chars().take(64).collect());
    if m.len() > MAX_HINT_LEN {
        return Err(bad());
    }
    let (essence, params) = m.split_once(';').unwrap_or((m, ""));
    let (ty, sub) = essence.split_once('/').ok_or_else(bad)?;
    let params_ok = params.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !(restricted_name(ty) && restricted_name(sub) && params_ok) {
        return Err(bad());
    }
    Ok(m.to_owned())
}

fn check_description(d: &str) -> Result<String, Error> {
    if d.is_empty() {
        return Err(Error::BadContentDescription("empty"));
    }
    if d.len() > MAX_HINT_LEN {
        return Err(Error::BadContentDescription("longer than 255 bytes"));
    }
    if d.chars().any(char::is_control) {
        return Err(Error::BadContentDescription("contains control characters"));
    }
    Ok(d.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn levels_and_commitments_parse() {
        assert_eq!("B-T".parse::<Level>().unwrap(), Level::BT);
        assert_eq!("cades-b-b".parse::<Level>().unwrap(), Level::BB);
        assert_eq!("PAdES-B-T".parse::<Level>().unwrap(), Level::BT);
        let e = "B-LTA".parse::<Level>().unwrap_err().to_string();
        assert_eq!(e, "unknown seal level \"B-LTA\" (B-B or B-T)");
        assert!(matches!(
            "B-LT".parse::<Level>(),
            Err(Error::UnknownLevel(_))
        ));
        for c in CommitmentType::ALL {
            assert_eq!(c.name().parse::<CommitmentType>().unwrap(), c);
            assert_eq!(c.oid().to_string().parse::<CommitmentType>().unwrap(), c);
        }
        assert!("proof".parse::<CommitmentType>().is_err());
    }

    #[test]
    fn mime_types() {
        for ok in [
            "application/pdf",
            "text/plain; charset=utf-8",
            "image/svg+xml",
        ] {
            assert!(check_mime_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "pdf",
            "/pdf",
            "application/",
            "a b/c",
            "text/plain;\n",
            "テキスト/x",
        ] {
            assert!(check_mime_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mime_type_and_description_exclude_each_other() {
        let raw = RawSealRequest {
            mime_type: Some("application/pdf"),
            content_description: Some("住民票の写し"),
            ..RawSealRequest::document(b"x")
        };
        assert!(matches!(
            SealRequest::check(raw),
            Err(Error::MimeTypeAndDescription)
        ));
        let raw = RawSealRequest {
            content_description: Some("住民票の写し"),
            ..RawSealRequest::document(b"x")
        };
        let req = SealRequest::check(raw).unwrap();
        assert_eq!(
            req.hint(),
            Some(&ContentHint::Description("住民票の写し".into()))
        );
    }
}
