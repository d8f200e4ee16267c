//! PAdES baseline B-B and B-T (ETSI EN 319 142-1): sealing a PDF by an incremental
//! update that carries a CAdES-detached CMS.
//!
//! ```text
//!  PDF bytes ──> document::Inspected::parse (lopdf)      refuse: unparsable, damaged,
//!     │                                                   encrypted, DocMDP P=1,
//!     │                                                   certify after a signature
//!     │  page N, rect within its media box (visible)      refuse: no page, rect off it
//!     │  Appearance::normal_appearance (visible only) ──> form XObject + its objects
//!     v
//!  update::write: [\n] /Sig (placeholders), widget+field, page or /Annots, AcroForm
//!     │            (/SigFlags 3), catalog (/AcroForm, /Perms for DocMDP), appearance,
//!     │            xref table | xref stream (as the file has), trailer /Prev
//!     │  /ByteRange [0 a b c] patched in; /Contents reserved from the chain, the key's
//!     │  longest signature and, for B-T, the TSA's largest token
//!     v
//!  digest = H(original ‖ update[..a] ‖ update[b..])    (streamed, nothing copied)
//!  SealCredential::sign_cms(Detached{digest}, Profile::Pades)  (no signing-time;
//!     signing-certificate-v2, CMS algorithm protection; B-T: signature-time-stamp)
//!     v
//!  hex CMS into /Contents (too big: PdfError::ContentsTooSmall, nothing released)
//!  SealedPdf { update, record { object_hash = SHA-256(original ‖ update) } }
//! ```
//!
//! The original bytes are never copied or changed: the sealed file is the original
//! followed by [`SealedPdf::update`], and a server can send the two one after the other.
//!
//! # The appearance seam
//! An invisible seal (the default) has a zero rectangle and no appearance stream. A
//! visible one needs an [`Appearance`]: given the rectangle, the time and the
//! credential, it adds its objects (form XObject, image, font) to [`NewObjects`] and
//! returns the form XObject that becomes the widget's `/AP /N`; everything it added
//! is written into the same update.
//!
//! CONFORMANCE (docs/requirements.md): the signature dictionary of EN 319 142-1 §5.3
//! (`/Filter /Adobe.PPKLite`, `/SubFilter /ETSI.CAdES.detached`, `/M`, `/ByteRange`
//! over all but `/Contents`), the CMS of §5.2 (no signing-time, ESS
//! signing-certificate-v2, content-type id-data), B-T's signature-time-stamp.

pub mod appearance;
mod document;
mod error;
mod update;

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use hanko_pki::cms;
use hanko_pki::{HashAlgorithm, alg::key_type_of_spki};
pub use lopdf;
use lopdf::{Object, ObjectId};

pub use error::PdfError;

use crate::error::Error;
use crate::request::{CommitmentType, Level, Packaging};
use crate::seal::{Profile, SealCredential, SealRecord, commitment_attribute, whole_seconds};
use crate::timestamp::TimeStamper;

/// The name of the signature fields Hanko adds: `HankoSeal1`, `HankoSeal2`, ...
pub const SIG_FIELD_PREFIX: &str = "HankoSeal";

/// Bytes of the CMS beyond the certificates, the signature value and the time-stamp
/// token: ContentInfo, SignedData and SignerInfo framing, algorithm identifiers, the
/// signed attributes (content-type, a message digest of at most 64 bytes,
/// signing-certificate-v2, CMS algorithm protection, commitment type) with room to
/// spare. The sid's issuer and serial are added from the certificate.
const CMS_OVERHEAD: usize = 1024;

/// Reserved for a B-T token when the time-stamper cannot say how large its tokens
/// are ([`TimeStamper::max_token_len`]): a token with a chain of three 2 KiB
/// certificates fits.
pub const DEFAULT_TOKEN_RESERVE: usize = 12 * 1024;

/// A rectangle in PDF points (default user space, from the page's lower-left corner).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Lower-left x.
    pub x: f32,
    /// Lower-left y.
    pub y: f32,
    /// Width (> 0).
    pub width: f32,
    /// Height (> 0).
    pub height: f32,
}

impl FromStr for Rect {
    type Err = PdfError;

    /// `x,y,w,h`: four finite numbers, width and height positive.
    fn from_str(s: &str) -> Result<Self, PdfError> {
        let bad = || PdfError::BadRect(s.chars().take(64).collect());
        let v: Vec<f32> = s
            .split(',')
            .map(|p| p.trim().parse::<f32>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match v.as_slice() {
            &[x, y, width, height]
                if v.iter().all(|n| n.is_finite()) && width > 0.0 && height > 0.0 =>
            {
                Ok(Self {
                    x,
                    y,
                    width,
                    height,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Where the seal's widget goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Placement {
    /// No appearance: a zero rectangle on the page (1-based).
    Invisible {
        /// The page the field belongs to.
        page: u32,
    },
    /// Drawn by an [`Appearance`] in `rect` on `page` (1-based).
    Visible {
        /// The page.
        page: u32,
        /// The rectangle, within the page's media box.
        rect: Rect,
    },
}

impl Default for Placement {
    fn default() -> Self {
        Self::Invisible { page: 1 }
    }
}

/// A request to seal a PDF.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PdfSealRequest {
    /// B-B or B-T.
    pub level: Level,
    /// Invisible (default) or visible.
    pub placement: Placement,
    /// A certification (DocMDP, P=2) seal: later changes other than form filling and
    /// signatures are flagged by viewers. Only as the document's first signature.
    pub certify: bool,
    /// The commitment-type-indication signed attribute; `None` leaves it out.
    pub commitment: Option<CommitmentType>,
}

impl Default for PdfSealRequest {
    fn default() -> Self {
        Self {
            level: Level::BB,
            placement: Placement::default(),
            certify: false,
            commitment: Some(CommitmentType::ProofOfOrigin),
        }
    }
}

/// A sealed PDF: the original bytes followed by [`SealedPdf::update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPdf {
    /// The incremental update to append to the original bytes.
    pub update: Vec<u8>,
    /// The DER CMS in `/Contents`.
    pub cms: Vec<u8>,
    /// The signature dictionary's `/ByteRange`, over the whole sealed file.
    pub byte_range: [u64; 4],
    /// What the issuance log records: `object_hash` is the SHA-256 of the whole
    /// sealed file, `content_digest` the ByteRange digest the CMS signs.
    pub record: SealRecord,
}

/// Objects an update adds, numbered from the first free object number on.
#[derive(Debug)]
pub struct NewObjects {
    next: u32,
    objects: Vec<(ObjectId, Object)>,
}

impl NewObjects {
    fn new(first: u32) -> Self {
        Self {
            next: first,
            objects: Vec::new(),
        }
    }

    /// Adds `object` to the update; returns its reference.
    pub fn add(&mut self, object: impl Into<Object>) -> Result<ObjectId, PdfError> {
        let id = self.reserve()?;
        self.objects.push((id, object.into()));
        Ok(id)
    }

    /// Reserves an object number, to be filled with [`NewObjects::set`] (for objects
    /// that refer to each other).
    pub fn reserve(&mut self) -> Result<ObjectId, PdfError> {
        update::new_id(&mut self.next)
    }

    /// Sets a reserved object.
    pub fn set(&mut self, id: ObjectId, object: impl Into<Object>) {
        self.objects.retain(|(i, _)| *i != id);
        self.objects.push((id, object.into()));
    }
}

/// What an [`Appearance`] is told about the seal it draws.
#[derive(Debug)]
pub struct AppearanceContext<'a> {
    /// The document (read only), e.g. for its `/Lang`.
    pub document: &'a lopdf::Document,
    /// The page (1-based) and its reference.
    pub page: (u32, ObjectId),
    /// The widget's rectangle on the page; the form XObject's `/BBox` is
    /// `[0 0 width height]`.
    pub rect: Rect,
    /// The signing time (`/M`), whole seconds.
    pub signing_time: SystemTime,
    /// The credential that seals.
    pub credential: &'a SealCredential,
}

/// Draws a visible seal: implemented by the appearance module (image and text).
pub trait Appearance: Send + Sync + fmt::Debug {
    /// Adds the appearance's objects to `objects` and returns the form XObject for
    /// the widget's `/AP /N`.
    fn normal_appearance(
        &self,
        ctx: &AppearanceContext<'_>,
        objects: &mut NewObjects,
    ) -> Result<ObjectId, PdfError>;
}

/// A PDF parsed and checked against a [`PdfSealRequest`]: it parses, is not
/// encrypted or damaged, its DocMDP allows another signature, a certification seal
/// would be its first signature, the page exists and a visible rectangle lies within
/// it. Only the appearance is left to check when it is sealed
/// ([`SealCredential::seal_checked_pdf`]).
///
/// A caller that must judge a whole batch before spending anything on it (the CSC
/// `signDoc` call, whose SAD is single-use) checks every file first, then seals them;
/// the parse is not repeated.
#[derive(Debug)]
pub struct CheckedPdf<'a> {
    pdf: &'a [u8],
    doc: document::Inspected,
    request: PdfSealRequest,
    /// The reference of the page the seal's widget goes on.
    page: ObjectId,
}

impl<'a> CheckedPdf<'a> {
    /// Parses `pdf` and applies every refusal that depends on the file and the
    /// request alone.
    pub fn new(pdf: &'a [u8], request: &PdfSealRequest) -> Result<Self, Error> {
        let doc = document::Inspected::parse(pdf)?;
        if doc.docmdp == Some(1) {
            return Err(PdfError::CertificationForbidsSignatures.into());
        }
        if request.certify && doc.signatures > 0 {
            return Err(PdfError::CertificationNotFirst.into());
        }
        let page = match request.placement {
            Placement::Invisible { page } => doc.page(page)?.0,
            Placement::Visible { page, rect } => {
                let (page_id, media_box) = doc.page(page)?;
                let r = [rect.x, rect.y, rect.x + rect.width, rect.y + rect.height];
                let inside = r[0] >= media_box[0]
                    && r[1] >= media_box[1]
                    && r[2] <= media_box[2]
                    && r[3] <= media_box[3];
                if !inside {
                    return Err(PdfError::RectOffPage {
                        page,
                        x: rect.x,
                        y: rect.y,
                        w: rect.width,
                        h: rect.height,
                        media_box,
                    }
                    .into());
                }
                page_id
            }
        };
        Ok(Self {
            pdf,
            doc,
            request: *request,
            page,
        })
    }

    /// The request the file was checked against.
    pub fn request(&self) -> &PdfSealRequest {
        &self.request
    }

    /// The file as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.pdf
    }
}

impl SealCredential {
    /// Seals `pdf` as PAdES `request.level` at `now` (whole seconds; `/M`). B-T asks
    /// `time_stamper`; a visible placement needs `appearance`. The sealed file is
    /// `pdf` followed by [`SealedPdf::update`]. [`CheckedPdf::new`], then
    /// [`SealCredential::seal_checked_pdf`].
    pub async fn seal_pdf(
        &self,
        pdf: &[u8],
        request: &PdfSealRequest,
        now: SystemTime,
        time_stamper: Option<&dyn TimeStamper>,
        appearance: Option<&dyn Appearance>,
    ) -> Result<SealedPdf, Error> {
        let checked = CheckedPdf::new(pdf, request)?;
        self.seal_checked_pdf(checked, now, time_stamper, appearance)
            .await
    }

    /// Seals a file [`CheckedPdf::new`] accepted; see [`SealCredential::seal_pdf`].
    pub async fn seal_checked_pdf(
        &self,
        checked: CheckedPdf<'_>,
        now: SystemTime,
        time_stamper: Option<&dyn TimeStamper>,
        appearance: Option<&dyn Appearance>,
    ) -> Result<SealedPdf, Error> {
        let CheckedPdf {
            pdf,
            doc,
            request,
            page,
        } = checked;
        let request = &request;
        let signing_time = whole_seconds(now);
        let mut objects = NewObjects::new(doc.size);
        let (rect, ap) = match request.placement {
            Placement::Invisible { .. } => ([0.0; 4], None),
            Placement::Visible { page: n, rect } => {
                let appearance = appearance.ok_or(PdfError::NoAppearance)?;
                let ctx = AppearanceContext {
                    document: &doc.doc,
                    page: (n, page),
                    rect,
                    signing_time,
                    credential: self,
                };
                let ap = appearance.normal_appearance(&ctx, &mut objects)?;
                let r = [rect.x, rect.y, rect.x + rect.width, rect.y + rect.height];
                (r, Some(ap))
            }
        };
        let spec = update::SigSpec {
            page,
            rect,
            appearance: ap,
            m: pdf_date(signing_time),
            reserve: self.contents_reserve(request.level, time_stamper),
            certify: request.certify,
        };
        let mut update = update::write(&doc, pdf.len(), pdf.last().copied(), objects, &spec)?;
        drop(doc);

        let hash = self.hash_algorithm();
        let [head, tail] = update.signed_parts();
        let digest = hash.digest_parts(&[pdf, head, tail]);
        let attrs = commitment_attribute(request.commitment)?;
        let signed = self
            .sign_cms(
                cms::Content::Detached { digest: &digest },
                Profile::Pades,
                &attrs,
                request.level,
                now,
                time_stamper,
            )
            .await?;
        update.fill_contents(&signed.der)?;
        let object_hash = HashAlgorithm::Sha256.digest_parts(&[pdf, &update.bytes]);
        let record = self.record(
            object_hash,
            &signed,
            request.level,
            Packaging::Detached,
            digest,
        );
        Ok(SealedPdf {
            update: update.bytes,
            cms: signed.der,
            byte_range: update.byte_range,
            record,
        })
    }

    /// The bytes `/Contents` reserves for this credential's CMS: its chain, the sid,
    /// the key's longest signature, [`CMS_OVERHEAD`], and for B-T the time-stamper's
    /// largest token.
    fn contents_reserve(&self, level: Level, time_stamper: Option<&dyn TimeStamper>) -> usize {
        let leaf = self.certificate();
        let chain: usize = self.chain().iter().map(|c| c.der().len()).sum();
        // An unknown key type: room for an RSA-8192 signature.
        let signature = key_type_of_spki(self.signer().public_key_der())
            .map_or(1024, |k| k.max_signature_len());
        let mut n =
            chain + leaf.issuer_der().len() + leaf.serial_der().len() + signature + CMS_OVERHEAD;
        if level == Level::BT {
            let token = time_stamper
                .and_then(|t| t.max_token_len(self.hash_algorithm()))
                .unwrap_or(DEFAULT_TOKEN_RESERVE);
            // The unsigned attribute around it: SEQUENCE, OID, SET and [1] headers.
            n += token + 32;
        }
        n
    }
}

/// A PDF date (ISO 32000-2 §7.9.4) in UTC: `D:YYYYMMDDHHmmSS+00'00'`.
fn pdf_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(dt) => format!("D:{}+00'00'", dt.format("%Y%m%d%H%M%S")),
        None => "D:19700101000000+00'00'".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn rects_parse_strictly() {
        let r: Rect = "36, 36.5,144,72".parse().unwrap();
        assert_eq!((r.x, r.y, r.width, r.height), (36.0, 36.5, 144.0, 72.0));
        for bad in [
            "",
            "1,2,3",
            "1,2,3,4,5",
            "1,2,0,4",
            "1,2,3,-4",
            "a,b,c,d",
            "1,2,inf,4",
        ] {
            assert!(
                matches!(bad.parse::<Rect>(), Err(PdfError::BadRect(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pdf_dates_are_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_220_000);
        assert_eq!(pdf_date(t), "D:20261202140000+00'00'");
    }
}
