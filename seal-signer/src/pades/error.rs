//! Why a PDF was not sealed: [`PdfError`], carried by [`crate::Error::Pdf`].
//!
//! Each refusal names what is wrong with the file or the request, because the caller
//! has to act on it (decrypt the file first, pick another page, ...). Messages never
//! carry document content beyond numbers and PDF names.

use super::appearance::AppearanceError;
use crate::error::Fault;

/// A PDF that cannot be sealed, or a placement that does not fit it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    /// The bytes are not a PDF a parser can read (no header, garbage, truncated, a
    /// damaged cross-reference section the parser would have to repair).
    #[error("the PDF does not parse: {0}")]
    Unparsable(String),
    /// The PDF is encrypted (it has an `/Encrypt` dictionary). A seal over an encrypted
    /// file would have to be encrypted with the file's key, which Hanko does not hold:
    /// send the decrypted file.
    #[error("the PDF is encrypted; send it decrypted")]
    Encrypted,
    /// The document is certified with DocMDP permissions P=1: no change at all, not even
    /// another signature, is allowed after its certification signature.
    #[error("the document's certification (DocMDP P=1) forbids further signatures")]
    CertificationForbidsSignatures,
    /// A certification (DocMDP) seal was asked for, but the document already carries a
    /// signature; a certification signature must be the first one (ISO 32000-2 §12.8.2.2).
    #[error(
        "a certification seal must be the document's first signature, and it is already signed"
    )]
    CertificationNotFirst,
    /// The page number is 0 or past the last page.
    #[error("page {page} does not exist (the document has {pages} pages)")]
    PageOutOfRange {
        /// The page asked for, 1-based.
        page: u32,
        /// How many pages there are.
        pages: u32,
    },
    /// The rectangle is not `x,y,w,h` of finite numbers with a positive width and height.
    #[error("bad rectangle {0:?}: want x,y,w,h in PDF points, width and height > 0")]
    BadRect(String),
    /// The rectangle does not lie within the page's media box.
    #[error("rectangle [{x} {y} {w} {h}] is not within page {page}'s media box {media_box:?}")]
    RectOffPage {
        /// The page, 1-based.
        page: u32,
        /// Lower-left x.
        x: f32,
        /// Lower-left y.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
        /// The page's media box `[llx lly urx ury]`.
        media_box: [f32; 4],
    },
    /// A visible seal was asked of a sealer that has no appearance for it (no seal
    /// image configured for the credential): the request cannot be served as asked.
    #[error("no visible seal for this credential: it has no seal image (keys.seal.image)")]
    NoAppearance,
    /// The visible seal's appearance could not be made: a rectangle too small for its
    /// text (the caller's fault), or the configured image, font or text (the operator's).
    #[error("seal appearance: {0}")]
    Appearance(#[from] AppearanceError),
    /// The signature did not fit the space reserved for `/Contents` (an estimate of the
    /// chain, signature and time-stamp token that was too small): a bug or a TSA whose
    /// tokens grew. Nothing is released.
    #[error("the signature needs {needed} bytes, {reserved} were reserved in /Contents")]
    ContentsTooSmall {
        /// The DER length of the CMS.
        needed: usize,
        /// The bytes reserved.
        reserved: usize,
    },
    /// The document's structure is not one this writer can extend (a catalog or page
    /// that is not a dictionary, no `/Root`, object numbers exhausted).
    #[error("cannot add a signature to this PDF: {0}")]
    Structure(String),
}

impl PdfError {
    /// Whose fault: see [`crate::Error::fault`].
    pub fn fault(&self) -> Fault {
        match self {
            Self::Unparsable(_)
            | Self::Encrypted
            | Self::CertificationForbidsSignatures
            | Self::CertificationNotFirst
            | Self::PageOutOfRange { .. }
            | Self::BadRect(_)
            | Self::RectOffPage { .. }
            | Self::NoAppearance
            | Self::Structure(_)
            // The rectangle is the caller's, and so is a PDF whose object numbers are
            // used up.
            | Self::Appearance(
                AppearanceError::BadRect { .. }
                | AppearanceError::TextDoesNotFit { .. }
                | AppearanceError::NoObjectNumbers,
            ) => Fault::Caller,
            // The image, the font and the text (name, date) come from the configuration.
            Self::Appearance(_) | Self::ContentsTooSmall { .. } => Fault::System,
        }
    }

    /// A stable lower-case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unparsable(_) => "pdf_unparsable",
            Self::Encrypted => "pdf_encrypted",
            Self::CertificationForbidsSignatures => "pdf_docmdp_forbids",
            Self::CertificationNotFirst => "pdf_certification_not_first",
            Self::PageOutOfRange { .. } => "pdf_page_out_of_range",
            Self::BadRect(_) => "pdf_bad_rect",
            Self::RectOffPage { .. } => "pdf_rect_off_page",
            Self::NoAppearance => "pdf_no_appearance",
            Self::Appearance(_) => "pdf_appearance",
            Self::ContentsTooSmall { .. } => "pdf_contents_too_small",
            Self::Structure(_) => "pdf_structure",
        }
    }
}

impl From<AppearanceError> for crate::Error {
    fn from(e: AppearanceError) -> Self {
        Self::Pdf(e.into())
    }
}
