//! Reading the PDF to be sealed: parse it with `lopdf`, refuse what cannot be sealed,
//! and find what the update must extend (catalog, AcroForm, the page, the last
//! cross-reference section).
//!
//! # Why it refuses what it refuses
//! * Encrypted files: every string and stream the update adds would have to be
//!   encrypted with the file's key. lopdf opens files with an empty user password by
//!   decrypting them in memory, so both "still encrypted" and "was encrypted" count.
//! * Files the parser had to repair (cross-reference offsets corrected or the table
//!   rebuilt by scanning, as for a truncated file): an update's `/Prev` points at the
//!   file's own last cross-reference section, and a viewer reading a damaged chain may
//!   not see the objects the signature covers. Such a file is the caller's to fix.
//! * A certification signature with DocMDP P=1 (ISO 32000-2 §12.8.2.2): no change is
//!   allowed, a new signature included.

use std::collections::BTreeSet;

use lopdf::xref::XrefType;
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use super::error::PdfError;

/// How deep a page tree or field tree is followed (loops and hostile nesting).
const MAX_DEPTH: usize = 64;

/// The parsed document and what the update needs of it.
#[derive(Debug)]
pub(crate) struct Inspected {
    /// The parsed document (read only).
    pub doc: Document,
    /// The offset the file's last `startxref` names: the update's `/Prev`.
    pub startxref: u64,
    /// Whether the last section is a cross-reference stream (else a table).
    pub xref_stream: bool,
    /// The first object number no revision uses (the trailer's `/Size`, at least).
    pub size: u32,
    /// The catalog's reference.
    pub root: ObjectId,
    /// Signature fields that hold a signature (`/FT /Sig` with `/V`).
    pub signatures: usize,
    /// DocMDP P of a certification signature, if the document is certified.
    pub docmdp: Option<i64>,
    /// The names (`/T`) of the top-level form fields.
    pub field_names: BTreeSet<Vec<u8>>,
}

impl Inspected {
    /// Parses `pdf` and applies the refusals of the module documentation.
    pub fn parse(pdf: &[u8]) -> Result<Self, PdfError> {
        if !pdf
            .get(..1024)
            .unwrap_or(pdf)
            .windows(5)
            .any(|w| w == b"%PDF-")
        {
            return Err(PdfError::Unparsable("no %PDF- header".into()));
        }
        let doc =
            Document::load_mem_with_options(pdf, LoadOptions::default()).map_err(|e| match e {
                lopdf::Error::Decryption(_)
                | lopdf::Error::InvalidPassword
                | lopdf::Error::UnsupportedSecurityHandler(_)
                | lopdf::Error::AlreadyEncrypted => PdfError::Encrypted,
                other => PdfError::Unparsable(other.to_string()),
            })?;
        if doc.is_encrypted() || doc.was_encrypted() {
            return Err(PdfError::Encrypted);
        }
        if doc.xref_recovery.is_some() {
            return Err(PdfError::Unparsable(
                "damaged cross-reference data (truncated or edited file)".into(),
            ));
        }
        let startxref = last_startxref(pdf)?;
        let xref_stream = matches!(
            doc.reference_table.cross_reference_type,
            XrefType::CrossReferenceStream
        );
        let root = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| PdfError::Unparsable("the trailer has no /Root reference".into()))?;
        let trailer_size = doc
            .trailer
            .get(b"Size")
            .and_then(Object::as_i64)
            .ok()
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0);
        let size = trailer_size.max(doc.max_id.saturating_add(1));
        let catalog = doc
            .get_dictionary(root)
            .map_err(|_| PdfError::Unparsable("the catalog is not a dictionary".into()))?;
        let docmdp = docmdp_permissions(&doc, catalog);
        let (signatures, field_names) = match dict_at(&doc, catalog, b"AcroForm") {
            Some(form) => form_fields(&doc, form),
            None => (0, BTreeSet::new()),
        };
        Ok(Self {
            startxref,
            xref_stream,
            size,
            root,
            signatures,
            docmdp,
            field_names,
            doc,
        })
    }

    /// The catalog dictionary.
    pub fn catalog(&self) -> Result<&Dictionary, PdfError> {
        self.doc
            .get_dictionary(self.root)
            .map_err(|_| PdfError::Structure("the catalog is not a dictionary".into()))
    }

    /// The number of pages.
    pub fn page_count(&self) -> u32 {
        u32::try_from(self.doc.get_pages().len()).unwrap_or(u32::MAX)
    }

    /// Page `page` (1-based): its reference and its media box `[llx lly urx ury]`.
    pub fn page(&self, page: u32) -> Result<(ObjectId, [f32; 4]), PdfError> {
        let pages = self.doc.get_pages();
        let out_of_range = || PdfError::PageOutOfRange {
            page,
            pages: self.page_count(),
        };
        let id = *pages.get(&page).ok_or_else(out_of_range)?;
        let media_box = self.media_box(id)?;
        Ok((id, media_box))
    }

    /// The media box of a page, inherited through `/Parent` (ISO 32000-2 §7.7.3.4),
    /// normalised so that `llx <= urx` and `lly <= ury`.
    fn media_box(&self, page: ObjectId) -> Result<[f32; 4], PdfError> {
        let mut node = self
            .doc
            .get_dictionary(page)
            .map_err(|_| PdfError::Structure("a page is not a dictionary".into()))?;
        for _ in 0..MAX_DEPTH {
            if let Ok(obj) = node.get(b"MediaBox") {
                let arr = resolve(&self.doc, obj).as_array().ok();
                let nums: Option<Vec<f32>> = arr.map(|a| {
                    a.iter()
                        .filter_map(|o| resolve(&self.doc, o).as_float().ok())
                        .collect()
                });
                return match nums.as_deref() {
                    Some(&[a, b, c, d]) => Ok([a.min(c), b.min(d), a.max(c), b.max(d)]),
                    _ => Err(PdfError::Structure(
                        "a page's /MediaBox is malformed".into(),
                    )),
                };
            }
            match dict_at(&self.doc, node, b"Parent") {
                Some(parent) => node = parent,
                None => break,
            }
        }
        Err(PdfError::Structure("a page has no /MediaBox".into()))
    }
}

/// Follows a reference (one level; lopdf resolves chains).
pub(crate) fn resolve<'a>(doc: &'a Document, obj: &'a Object) -> &'a Object {
    doc.dereference(obj).map(|(_, o)| o).unwrap_or(obj)
}

/// The dictionary under `key` of `dict`, direct or referenced.
pub(crate) fn dict_at<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Option<&'a Dictionary> {
    resolve(doc, dict.get(key).ok()?).as_dict().ok()
}

/// P of the catalog's `/Perms /DocMDP` signature's DocMDP reference (2 when absent,
/// ISO 32000-2 Table 257), or `None` for a document that is not certified.
fn docmdp_permissions(doc: &Document, catalog: &Dictionary) -> Option<i64> {
    let perms = dict_at(doc, catalog, b"Perms")?;
    let sig = dict_at(doc, perms, b"DocMDP")?;
    let refs = resolve(doc, sig.get(b"Reference").ok()?).as_array().ok()?;
    for r in refs {
        let Ok(r) = resolve(doc, r).as_dict() else {
            continue;
        };
        let method = r.get(b"TransformMethod").and_then(Object::as_name).ok();
        if method != Some(b"DocMDP".as_slice()) {
            continue;
        }
        let p = dict_at(doc, r, b"TransformParams")
            .and_then(|t| t.get(b"P").ok())
            .and_then(|p| resolve(doc, p).as_i64().ok());
        return Some(p.unwrap_or(2));
    }
    // A /Perms /DocMDP without a DocMDP reference: certified, with the default P.
    Some(2)
}

/// Counts the signed signature fields in the form's field tree and collects the
/// top-level field names.
fn form_fields(doc: &Document, form: &Dictionary) -> (usize, BTreeSet<Vec<u8>>) {
    let mut names = BTreeSet::new();
    let mut signed = 0;
    let Some(fields) = form
        .get(b"Fields")
        .ok()
        .and_then(|f| resolve(doc, f).as_array().ok())
    else {
        return (0, names);
    };
    let mut seen = BTreeSet::new();
    // (field, depth, inherited /FT is Sig)
    let mut stack: Vec<(&Object, usize, bool)> = fields.iter().map(|f| (f, 0, false)).collect();
    while let Some((obj, depth, parent_sig)) = stack.pop() {
        if let Object::Reference(id) = obj
            && !seen.insert(*id)
        {
            continue;
        }
        let Ok(field) = resolve(doc, obj).as_dict() else {
            continue;
        };
        if depth == 0
            && let Ok(t) = field.get(b"T").and_then(Object::as_str)
        {
            names.insert(t.to_vec());
        }
        let is_sig = match field.get(b"FT").and_then(Object::as_name) {
            Ok(ft) => ft == b"Sig",
            Err(_) => parent_sig,
        };
        if is_sig && field.has(b"V") {
            signed += 1;
        }
        if depth < MAX_DEPTH
            && let Some(kids) = field
                .get(b"Kids")
                .ok()
                .and_then(|k| resolve(doc, k).as_array().ok())
        {
            stack.extend(kids.iter().map(|k| (k, depth + 1, is_sig)));
        }
    }
    (signed, names)
}

/// The offset after the file's last `startxref` keyword.
fn last_startxref(pdf: &[u8]) -> Result<u64, PdfError> {
    let tail_start = pdf.len().saturating_sub(2048);
    let tail = pdf.get(tail_start..).unwrap_or(pdf);
    let missing = || PdfError::Unparsable("no startxref at the end of the file".into());
    let at = tail
        .windows(9)
        .rposition(|w| w == b"startxref")
        .ok_or_else(missing)?;
    let digits: Vec<u8> = tail
        .get(at + 9..)
        .unwrap_or_default()
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|&off| off < pdf.len() as u64)
        .ok_or_else(missing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn startxref_is_the_last_one() {
        let pdf = b"%PDF-1.7\nstartxref\n3\n%%EOF\nmore\nstartxref\r\n 12\n%%EOF\n";
        assert_eq!(last_startxref(pdf).unwrap(), 12);
        assert!(last_startxref(b"%PDF-1.7\nstartxref\n%%EOF").is_err());
        assert!(last_startxref(b"%PDF-1.7\nstartxref 99999\n%%EOF").is_err());
    }

    #[test]
    fn garbage_is_unparsable() {
        for bad in [&b""[..], b"hello", b"%PDF-1.7\n", b"%PDF-1.7\n1 0 obj\n<<"] {
            assert!(
                matches!(Inspected::parse(bad), Err(PdfError::Unparsable(_))),
                "{bad:?}"
            );
        }
    }
}
