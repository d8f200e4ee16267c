//! A [`SealCredential`] (a key, its certificate chain and a name) turns a
//! [`SealRequest`] into a [`Seal`]: the CAdES bytes and the [`SealRecord`] the issuance
//! log keeps.
//!
//! The CMS itself is `hanko_pki::cms`'s one-signer SignedData; this module adds what
//! makes it CAdES baseline (ETSI EN 319 122-1): signing-time always, the optional
//! mime-type / content-hints and commitment-type-indication as extra signed attributes,
//! and for B-T the signature-time-stamp as an unsigned attribute added after signing,
//! which leaves every signed byte as it was.
//!
//! # Why it looks the way it does
//! * One digest algorithm: CMS hashes the content and the signed attributes with the
//!   SignerInfo's digestAlgorithm, and the key's [`hanko_pki::Signer`] hashes with its
//!   own. So a caller's digest must be made with the credential's algorithm
//!   ([`SealCredential::hash_algorithm`]); anything else is the caller's error, not a
//!   second hash quietly chosen here.
//! * The signing time is the caller's clock value, truncated to whole seconds, and that
//!   truncated value is what the record keeps: the log and the CMS say the same time.
//! * The certificate's validity is checked at the signing time and at the time-stamp's
//!   genTime, before and after the key is used, so no seal leaves whose certificate had
//!   expired when it was made.
//! * The time-stamp token is checked for its imprint before it is embedded
//!   ([`crate::timestamp::check_token`]): a TSA that answers for another request must
//!   not produce a B-T seal that fails later, at the relying party.
//! * The record's `object_hash` is over the bytes as delivered (B-T included), so the
//!   log names exactly the `.p7s` the caller holds.
//!
//! CONFORMANCE (docs/requirements.md): D.45 the B-B attributes, exactly one
//! signing-time; D.46 the chain without duplicates, ESSCertIDv2 without issuerSerial,
//! mime-type or content-hints when the caller names the document's type; D.47 SHA-2
//! only (the algorithm table has no MD5 or SHA-1; a caller's weak digest is refused by
//! name), cms-algorithm-protection always; D.48 the signature-time-stamp over the
//! signature value, made while the seal certificate is valid.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::alg::DigestSignAlgorithm;
use hanko_pki::cert::{Certificate, check_key_matches, check_seal_certificate};
use hanko_pki::cms::{self, SignedDataParams};
use hanko_pki::der::{self, tag, tlv};
use hanko_pki::oid;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm, Signer};

use crate::error::Error;
use crate::metadata::SealMetadata;
use crate::request::{CommitmentType, Content, ContentHint, Level, Packaging, SealRequest};
use crate::timestamp::{TimeStamper, check_token};

/// One seal credential: an HSM key, its certificate chain and the name callers use.
pub struct SealCredential {
    name: String,
    signer: Arc<dyn Signer>,
    /// Leaf first, no certificate twice.
    chain: Vec<Certificate>,
    /// Description, allowed levels and algorithms, visible-seal name and image.
    metadata: SealMetadata,
}

impl fmt::Debug for SealCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealCredential")
            .field("name", &self.name)
            .field("certificate", &self.certificate().subject_string())
            .field("algorithm", &self.signer.algorithm())
            .field("chain_len", &self.chain.len())
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// A finished seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    /// The DER CMS ContentInfo to deliver (a `.p7s`).
    pub der: Vec<u8>,
    /// The DER SET OF (tag 0x31) of the signed attributes: the bytes the key signed.
    pub signed_attributes_der: Vec<u8>,
    /// What the issuance log records; make it durable before releasing [`Seal::der`].
    pub record: SealRecord,
}

/// What the issuance log needs of one seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRecord {
    /// The credential's name (the key label in `--dev`).
    pub credential: String,
    /// SHA-256 of [`Seal::der`], the CMS exactly as delivered.
    pub object_hash: Vec<u8>,
    /// The signing-time attribute's value (whole seconds).
    pub signing_time: SystemTime,
    /// B-B or B-T.
    pub level: Level,
    /// Detached or enveloping.
    pub packaging: Packaging,
    /// The algorithm of the message-digest attribute.
    pub content_hash: HashAlgorithm,
    /// The message-digest attribute's value: the hash of the sealed document.
    pub content_digest: Vec<u8>,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// SHA-256 of the seal certificate's DER (which certificate, across rollovers).
    pub certificate_sha256: Vec<u8>,
    /// genTime of the signature time-stamp (B-T only).
    pub time_stamp_time: Option<SystemTime>,
}

impl SealCredential {
    /// Checks and assembles a credential. `chain[0]` is the seal certificate; it must
    /// pass [`check_seal_certificate`] at `now` and certify the signer's key. The rest
    /// (its issuers) go into every seal; a certificate given twice is kept once.
    pub fn new(
        name: impl Into<String>,
        signer: Arc<dyn Signer>,
        chain: Vec<Certificate>,
        now: SystemTime,
    ) -> Result<Self, Error> {
        let name = name.into();
        let leaf = chain
            .first()
            .ok_or_else(|| Error::EmptyChain(name.clone()))?;
        let refused = |source| Error::Certificate {
            credential: name.clone(),
            source,
        };
        check_seal_certificate(leaf, now).map_err(refused)?;
        check_key_matches(leaf, signer.public_key_der()).map_err(refused)?;
        let mut unique: Vec<Certificate> = Vec::with_capacity(chain.len());
        for cert in chain {
            if !unique.iter().any(|c| c.der() == cert.der()) {
                unique.push(cert);
            }
        }
        Ok(Self {
            name,
            signer,
            chain: unique,
            metadata: SealMetadata::default(),
        })
    }

    /// The credential with `metadata` instead of the default (every level, every
    /// algorithm that fits the key); refused when it does not fit the key
    /// ([`SealMetadata::check`]).
    pub fn with_metadata(mut self, metadata: SealMetadata) -> Result<Self, Error> {
        metadata
            .check(self.certificate().key_type())
            .map_err(|why| Error::Metadata {
                credential: self.name.clone(),
                why,
            })?;
        self.metadata = metadata;
        Ok(self)
    }

    /// Its metadata.
    pub fn metadata(&self) -> &SealMetadata {
        &self.metadata
    }

    /// Whether CSC `signHash` may use `alg` with this credential: it fits the key and
    /// the metadata allows it. Refused as the caller's error.
    pub fn check_digest_algorithm(&self, alg: DigestSignAlgorithm) -> Result<(), Error> {
        let offered = self
            .certificate()
            .key_type()
            .map(|k| self.metadata.digest_algorithms_for(k))
            .unwrap_or_default();
        if offered.contains(&alg) {
            Ok(())
        } else {
            Err(Error::AlgorithmNotAllowed {
                credential: self.name.clone(),
                algorithm: alg.to_string(),
            })
        }
    }

    /// Whether this credential's `[keys.seal] levels` allow seals of `level`: a caller
    /// that judges a request before making the seal asks here (every seal is held to it
    /// again when it is signed).
    pub fn check_level(&self, level: Level) -> Result<(), Error> {
        if self.metadata.allows_level(level) {
            Ok(())
        } else {
            Err(Error::LevelNotAllowed {
                credential: self.name.clone(),
                level,
                allowed: self.metadata.levels_text(),
            })
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The chain, seal certificate first, without duplicates.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The seal certificate.
    pub fn certificate(&self) -> &Certificate {
        // `new` refuses an empty chain.
        &self.chain[0]
    }

    /// The hash algorithm a caller's digest must be made with.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        self.signer.algorithm().hash()
    }

    /// Seals `request` with signing-time `now` (truncated to whole seconds). B-T asks
    /// `time_stamper` for the signature time-stamp.
    ///
    /// Nothing is returned that is not complete: a failed time-stamp fails the seal.
    pub async fn seal(
        &self,
        request: &SealRequest<'_>,
        now: SystemTime,
        time_stamper: Option<&dyn TimeStamper>,
    ) -> Result<Seal, Error> {
        let hash = self.hash_algorithm();
        let content_digest = match request.content() {
            Content::Document(doc) => hash.digest(doc),
            Content::Digest { alg, digest } if alg == hash => digest.to_vec(),
            Content::Digest { alg, .. } => {
                return Err(Error::DigestAlgorithmMismatch {
                    given: alg,
                    required: hash,
                });
            }
        };
        let content = match (request.content(), request.packaging()) {
            // pki hashes eContent itself (small payloads: the second hash is cheap).
            (Content::Document(doc), Packaging::Enveloping) => cms::Content::Encapsulated(doc),
            _ => cms::Content::Detached {
                digest: &content_digest,
            },
        };
        let extra = extra_signed_attributes(request)?;
        let signed = self
            .sign_cms(
                content,
                Profile::Cades,
                &extra,
                request.level(),
                now,
                time_stamper,
            )
            .await?;
        let record = self.record(
            HashAlgorithm::Sha256.digest(&signed.der),
            &signed,
            request.level(),
            request.packaging(),
            content_digest,
        );
        Ok(Seal {
            der: signed.der,
            signed_attributes_der: signed.signed_attributes_der,
            record,
        })
    }

    /// The one CMS path of both forms: the signed attributes of `profile`, signed by
    /// the credential's key at `now` (whole seconds), and for B-T the
    /// signature-time-stamp from `time_stamper` as an unsigned attribute.
    pub(crate) async fn sign_cms(
        &self,
        content: cms::Content<'_>,
        profile: Profile,
        extra: &[Vec<u8>],
        level: Level,
        now: SystemTime,
        time_stamper: Option<&dyn TimeStamper>,
    ) -> Result<SignedCms, Error> {
        // [keys.seal] levels bound CAdES and PAdES seals alike.
        self.check_level(level)?;
        let hash = self.hash_algorithm();
        let signing_time = whole_seconds(now);
        let leaf = self.certificate();
        if signing_time < leaf.not_before() || signing_time > leaf.not_after() {
            return Err(Error::CertificateNotValid { at: signing_time });
        }
        let time_stamper = match (level, time_stamper) {
            (Level::BT, None) => return Err(Error::NoTimeStamper),
            (Level::BT, Some(t)) => Some(t),
            (Level::BB, _) => None,
        };
        let extra: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
        let chain: Vec<&[u8]> = self.chain.iter().map(Certificate::der).collect();
        let params = SignedDataParams {
            econtent_type: oid::DATA,
            content,
            signer_certificate: leaf.der(),
            certificates: &chain,
            // Omit issuerSerial (CONFORMANCE D.46): the certHash names the certificate.
            ess_issuer_serial: false,
            signing_time: match profile {
                Profile::Cades => Some(signing_time),
                // EN 319 142-1 §5.2.1: the time is the signature dictionary's /M; a
                // signing-time attribute is not allowed.
                Profile::Pades => None,
            },
            extra_signed_attributes: &extra,
        };
        let signed = cms::sign_signed_data(&params, self.signer.as_ref()).await?;

        let (der, time_stamp_time) = match time_stamper {
            None => (signed.content_info_der, None),
            Some(tsa) => {
                let imprint = hash.digest(&signed.signature);
                let token = tsa
                    .time_stamp(hash, &imprint)
                    .await
                    .map_err(Error::TimeStamp)?;
                let gen_time = check_token(&token, hash, &imprint)?;
                // CONFORMANCE D.48: the time-stamp is made before the certificate
                // expires.
                if gen_time > leaf.not_after() {
                    return Err(Error::CertificateNotValid { at: gen_time });
                }
                let attr = cms::attribute_der(&oid::SIGNATURE_TIME_STAMP_TOKEN, &token)?;
                (signed.with_unsigned_attributes(&[&attr])?, Some(gen_time))
            }
        };
        Ok(SignedCms {
            der,
            signed_attributes_der: signed.signed_attributes_der,
            signing_time,
            time_stamp_time,
        })
    }

    /// The record of a seal whose delivered bytes hash to `object_hash`.
    pub(crate) fn record(
        &self,
        object_hash: Vec<u8>,
        signed: &SignedCms,
        level: Level,
        packaging: Packaging,
        content_digest: Vec<u8>,
    ) -> SealRecord {
        SealRecord {
            credential: self.name.clone(),
            object_hash,
            signing_time: signed.signing_time,
            level,
            packaging,
            content_hash: self.hash_algorithm(),
            content_digest,
            signature_algorithm: self.signer.algorithm(),
            certificate_sha256: self.certificate().fingerprint(HashAlgorithm::Sha256),
            time_stamp_time: signed.time_stamp_time,
        }
    }
}

/// Which baseline the signed attributes follow: the PAdES mode of the one
/// signed-attribute builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// CAdES (EN 319 122-1): a signing-time attribute.
    Cades,
    /// PAdES (EN 319 142-1): no signing-time; the time is in the PDF's `/M`.
    Pades,
}

/// A signed CMS and what its record needs.
#[derive(Debug)]
pub(crate) struct SignedCms {
    /// The DER ContentInfo, B-T time-stamp included.
    pub der: Vec<u8>,
    /// The DER SET OF of the signed attributes.
    pub signed_attributes_der: Vec<u8>,
    /// `now` in whole seconds.
    pub signing_time: SystemTime,
    /// genTime of the signature time-stamp (B-T).
    pub time_stamp_time: Option<SystemTime>,
}

/// The CAdES signed attributes beyond pki's own: mime-type or content-hints, and
/// commitment-type-indication, each a complete DER Attribute.
fn extra_signed_attributes(request: &SealRequest<'_>) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = commitment_attribute(request.commitment())?;
    match request.hint() {
        // MimeType ::= UTF8String
        Some(ContentHint::MimeType(m)) => out.push(cms::attribute_der(
            &oid::MIME_TYPE,
            &tlv(tag::UTF8_STRING, m.as_bytes()),
        )?),
        // ContentHints ::= SEQUENCE { contentDescription UTF8String OPTIONAL,
        //                             contentType ContentType }
        Some(ContentHint::Description(d)) => out.push(cms::attribute_der(
            &oid::CONTENT_HINTS,
            &der::sequence(&[&tlv(tag::UTF8_STRING, d.as_bytes()), &der::oid(&oid::DATA)]),
        )?),
        None => {}
    }
    Ok(out)
}

/// The commitment-type-indication attribute (CAdES and PAdES alike), if any.
pub(crate) fn commitment_attribute(c: Option<CommitmentType>) -> Result<Vec<Vec<u8>>, Error> {
    // CommitmentTypeIndication ::= SEQUENCE { commitmentTypeId, no qualifiers }
    Ok(match c {
        Some(c) => vec![cms::attribute_der(
            &oid::COMMITMENT_TYPE_INDICATION,
            &der::sequence(&[&der::oid(&c.oid())]),
        )?],
        None => Vec::new(),
    })
}

pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}
