//! The incremental update (ISO 32000-2 §7.5.6) that carries the seal, written here.
//!
//! ```text
//!  original bytes (untouched) | [\n] sig dict, widget, changed objects, appearance
//!                             |     objects, xref table or stream, trailer, %%EOF
//!                 /ByteRange: [0 ........ a]          [b ............... end]
//!                                          <Contents>
//! ```
//!
//! # Why Hanko writes the update itself
//! lopdf parses the file (`document.rs`) and serialises single objects
//! ([`lopdf::Writer::write_object`]), but its writers do not fit a signature:
//! `Document::save` rewrites the whole file (every earlier signature breaks), and
//! `IncrementalDocument::save_to` appends a revision without saying where anything
//! landed. A signature needs exactly that: the offsets of `/Contents` and
//! `/ByteRange` in the final file, fixed before hashing, and the space for the CMS
//! reserved in advance. So this module frames the objects (`N G obj ... endobj`), lays
//! out the placeholders at known offsets, and writes the cross-reference section in
//! the form the file already uses (a table after a table, a stream after a stream, as
//! §7.5.8.4 expects of an update), with `/Prev` at the file's last `startxref`.
//! The output is only the appended part; the caller keeps the original bytes and
//! hashes both where they lie.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use lopdf::{Dictionary, Object, ObjectId, Writer};

use super::document::{Inspected, resolve};
use super::error::PdfError;
use super::{NewObjects, SIG_FIELD_PREFIX};

/// Room for `0 a b c` inside `/ByteRange[...]`: four numbers of up to 20 digits.
const BYTE_RANGE_WIDTH: usize = 4 * 21;

/// What the signature dictionary and its field need.
#[derive(Debug)]
pub(crate) struct SigSpec {
    /// The page the widget sits on.
    pub page: ObjectId,
    /// `[llx lly urx ury]`; all zero for an invisible seal.
    pub rect: [f32; 4],
    /// The `/AP /N` form XObject, for a visible seal.
    pub appearance: Option<ObjectId>,
    /// `/M`, as a PDF date string.
    pub m: String,
    /// Bytes reserved for the DER CMS.
    pub reserve: usize,
    /// A certification (DocMDP P=2) signature.
    pub certify: bool,
}

/// The appended bytes with their placeholders laid out.
#[derive(Debug)]
pub(crate) struct Update {
    /// The bytes to append to the original file.
    pub bytes: Vec<u8>,
    /// Where `<...>` of `/Contents` is in [`Update::bytes`], brackets included.
    pub contents: Range<usize>,
    /// The final `/ByteRange`, over the whole file.
    pub byte_range: [u64; 4],
}

impl Update {
    /// The parts of the update the signature covers, after the original bytes.
    pub fn signed_parts(&self) -> [&[u8]; 2] {
        // `contents` was laid out inside `bytes` by `write`.
        [
            &self.bytes[..self.contents.start],
            &self.bytes[self.contents.end..],
        ]
    }

    /// Writes the DER CMS into `/Contents` (hex, zero-padded).
    pub fn fill_contents(&mut self, cms: &[u8]) -> Result<(), PdfError> {
        let room = self.contents.len() - 2;
        if cms.len() * 2 > room {
            return Err(PdfError::ContentsTooSmall {
                needed: cms.len(),
                reserved: room / 2,
            });
        }
        let mut hex = String::with_capacity(room);
        for b in cms {
            let _ = write!(hex, "{b:02X}");
        }
        let start = self.contents.start + 1;
        self.bytes[start..start + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(())
    }
}

/// Lays out the update for a document of `original_len` bytes ending in `last_byte`.
pub(crate) fn write(
    doc: &Inspected,
    original_len: usize,
    last_byte: Option<u8>,
    mut new: NewObjects,
    spec: &SigSpec,
) -> Result<Update, PdfError> {
    let sig_id = new.reserve()?;
    let widget_id = new.reserve()?;
    let mut changed = changed_objects(doc, &mut new, spec, sig_id, widget_id)?;
    for (id, obj) in new.objects {
        changed.insert(id, obj);
    }
    let xref_id = if doc.xref_stream {
        Some(new_id(&mut new.next)?)
    } else {
        None
    };

    let base = original_len as u64;
    let mut out = Vec::new();
    if !matches!(last_byte, Some(b'\n' | b'\r')) {
        out.push(b'\n');
    }
    let mut offsets: BTreeMap<ObjectId, u64> = BTreeMap::new();

    // The signature dictionary, with its placeholders.
    offsets.insert(sig_id, base + out.len() as u64);
    let (byte_range_at, contents) = write_sig_dict(&mut out, sig_id, spec);
    for (id, obj) in &changed {
        offsets.insert(*id, base + out.len() as u64);
        write_object(&mut out, *id, obj)?;
    }

    let size = doc.size.max(new.next).max(xref_id.map_or(0, |x| x.0 + 1));
    let trailer = trailer_entries(doc, size)?;
    let xref_at = base + out.len() as u64;
    match xref_id {
        Some(id) => write_xref_stream(&mut out, id, &mut offsets, xref_at, &trailer)?,
        None => write_xref_table(&mut out, &offsets, &trailer),
    }
    out.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());

    let total = base + out.len() as u64;
    let a = base + contents.start as u64;
    let b = base + contents.end as u64;
    let byte_range = [0, a, b, total - b];
    let text = format!("{} {} {} {}", byte_range[0], a, b, total - b);
    out[byte_range_at..byte_range_at + text.len()].copy_from_slice(text.as_bytes());
    Ok(Update {
        bytes: out,
        contents,
        byte_range,
    })
}

/// The widget, and every existing object the new field touches, rewritten: the
/// page (or its `/Annots` array), the AcroForm (or its `/Fields` array), the catalog
/// when the AcroForm or `/Perms` must be added to it.
fn changed_objects(
    doc: &Inspected,
    new: &mut NewObjects,
    spec: &SigSpec,
    sig_id: ObjectId,
    widget_id: ObjectId,
) -> Result<BTreeMap<ObjectId, Object>, PdfError> {
    let d = &doc.doc;
    let mut changed = BTreeMap::new();
    let widget_ref = Object::Reference(widget_id);

    // The merged field and widget annotation.
    let mut widget = Dictionary::new();
    widget.set("Type", Object::Name(b"Annot".to_vec()));
    widget.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget.set("FT", Object::Name(b"Sig".to_vec()));
    widget.set("T", Object::string_literal(field_name(doc)));
    widget.set("V", Object::Reference(sig_id));
    // Print | Locked: printed with the page, not movable or deletable in a viewer.
    widget.set("F", Object::Integer(132));
    widget.set("P", Object::Reference(spec.page));
    widget.set(
        "Rect",
        Object::Array(spec.rect.iter().map(|v| Object::Real(*v)).collect()),
    );
    if let Some(ap) = spec.appearance {
        let mut n = Dictionary::new();
        n.set("N", Object::Reference(ap));
        widget.set("AP", Object::Dictionary(n));
    }
    changed.insert(widget_id, Object::Dictionary(widget));

    // The page's /Annots: the referenced array, or the page itself.
    let page = d
        .get_dictionary(spec.page)
        .map_err(|_| PdfError::Structure("the page is not a dictionary".into()))?;
    match page.get(b"Annots") {
        Ok(Object::Reference(annots_id)) => {
            let mut annots = d
                .get_object(*annots_id)
                .and_then(Object::as_array)
                .map_err(|_| PdfError::Structure("a page's /Annots is not an array".into()))?
                .clone();
            annots.push(widget_ref.clone());
            changed.insert(*annots_id, Object::Array(annots));
        }
        found => {
            let mut annots = match found {
                Ok(Object::Array(a)) => a.clone(),
                Ok(_) => {
                    return Err(PdfError::Structure(
                        "a page's /Annots is not an array".into(),
                    ));
                }
                Err(_) => Vec::new(),
            };
            annots.push(widget_ref.clone());
            let mut page = page.clone();
            page.set("Annots", Object::Array(annots));
            changed.insert(spec.page, Object::Dictionary(page));
        }
    }

    // The AcroForm: its /Fields gets the new field, /SigFlags 3 (SignaturesExist |
    // AppendOnly).
    let mut catalog = doc.catalog()?.clone();
    let mut catalog_changed = false;
    let (form_id, mut form) = match catalog.get(b"AcroForm") {
        Ok(Object::Reference(id)) => {
            let form = d
                .get_dictionary(*id)
                .map_err(|_| PdfError::Structure("/AcroForm is not a dictionary".into()))?;
            (Some(*id), form.clone())
        }
        Ok(Object::Dictionary(form)) => (None, form.clone()),
        Ok(_) => return Err(PdfError::Structure("/AcroForm is not a dictionary".into())),
        Err(_) => (Some(new.reserve()?), Dictionary::new()),
    };
    match form.get(b"Fields") {
        Ok(Object::Reference(fields_id)) => {
            let mut fields = d
                .get_object(*fields_id)
                .and_then(Object::as_array)
                .map_err(|_| PdfError::Structure("/AcroForm /Fields is not an array".into()))?
                .clone();
            fields.push(widget_ref);
            changed.insert(*fields_id, Object::Array(fields));
        }
        found => {
            let mut fields = match found {
                Ok(other) => resolve(d, other)
                    .as_array()
                    .map_err(|_| PdfError::Structure("/AcroForm /Fields is not an array".into()))?
                    .clone(),
                Err(_) => Vec::new(),
            };
            fields.push(widget_ref);
            form.set("Fields", Object::Array(fields));
        }
    }
    let flags = form.get(b"SigFlags").and_then(Object::as_i64).unwrap_or(0);
    form.set("SigFlags", Object::Integer(flags | 3));
    match form_id {
        Some(id) => {
            if !catalog.has(b"AcroForm") {
                catalog.set("AcroForm", Object::Reference(id));
                catalog_changed = true;
            }
            changed.insert(id, Object::Dictionary(form));
        }
        None => {
            catalog.set("AcroForm", Object::Dictionary(form));
            catalog_changed = true;
        }
    }

    // Certification: /Perms /DocMDP names the signature dictionary.
    if spec.certify {
        match catalog.get(b"Perms") {
            Ok(Object::Reference(id)) => {
                let mut perms = d
                    .get_dictionary(*id)
                    .map_err(|_| PdfError::Structure("/Perms is not a dictionary".into()))?
                    .clone();
                perms.set("DocMDP", Object::Reference(sig_id));
                changed.insert(*id, Object::Dictionary(perms));
            }
            found => {
                let mut perms = match found {
                    Ok(Object::Dictionary(p)) => p.clone(),
                    _ => Dictionary::new(),
                };
                perms.set("DocMDP", Object::Reference(sig_id));
                catalog.set("Perms", Object::Dictionary(perms));
                catalog_changed = true;
            }
        }
    }
    if catalog_changed {
        changed.insert(doc.root, Object::Dictionary(catalog));
    }
    Ok(changed)
}

/// `HankoSeal<n>` with the smallest `n` no top-level field uses.
fn field_name(doc: &Inspected) -> String {
    (1u32..)
        .map(|n| format!("{SIG_FIELD_PREFIX}{n}"))
        .find(|name| !doc.field_names.contains(name.as_bytes()))
        .unwrap_or_else(|| SIG_FIELD_PREFIX.to_owned())
}

/// Writes the signature dictionary; returns where the `/ByteRange` numbers go and
/// where `<...>` of `/Contents` is, both relative to `out`.
fn write_sig_dict(out: &mut Vec<u8>, id: ObjectId, spec: &SigSpec) -> (usize, Range<usize>) {
    out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
    out.extend_from_slice(b"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached");
    out.extend_from_slice(format!("/M({})", spec.m).as_bytes());
    if spec.certify {
        // P=2: filling in forms and signing stay allowed; anything else is flagged.
        out.extend_from_slice(
            b"/Reference[<</Type/SigRef/TransformMethod/DocMDP\
              /TransformParams<</Type/TransformParams/P 2/V/1.2>>>>]",
        );
    }
    out.extend_from_slice(b"/ByteRange[");
    let byte_range_at = out.len();
    out.extend(std::iter::repeat_n(b' ', BYTE_RANGE_WIDTH));
    out.extend_from_slice(b"]/Contents");
    let start = out.len();
    out.push(b'<');
    out.extend(std::iter::repeat_n(b'0', spec.reserve * 2));
    out.push(b'>');
    let contents = start..out.len();
    out.extend_from_slice(b">>\nendobj\n");
    (byte_range_at, contents)
}

/// `N G obj`, the object as lopdf serialises it, `endobj`.
fn write_object(out: &mut Vec<u8>, id: ObjectId, obj: &Object) -> Result<(), PdfError> {
    out.extend_from_slice(format!("{} {} obj\n", id.0, id.1).as_bytes());
    Writer::write_object(out, obj).map_err(|e| PdfError::Structure(e.to_string()))?;
    out.extend_from_slice(b"\nendobj\n");
    Ok(())
}

/// The trailer entries the update repeats (`/Size`, `/Root`, `/Info`, `/ID`) and
/// `/Prev`, serialised; never the previous section's stream keys (`/W`, `/Index`, ...).
fn trailer_entries(doc: &Inspected, size: u32) -> Result<Vec<u8>, PdfError> {
    let mut out = format!("/Size {size}/Root {} {} R", doc.root.0, doc.root.1).into_bytes();
    for key in [b"Info".as_slice(), b"ID"] {
        if let Ok(value) = doc.doc.trailer.get(key) {
            out.push(b'/');
            out.extend_from_slice(key);
            out.push(b' ');
            Writer::write_object(&mut out, value)
                .map_err(|e| PdfError::Structure(e.to_string()))?;
        }
    }
    out.extend_from_slice(format!("/Prev {}", doc.startxref).as_bytes());
    Ok(out)
}

/// Runs of consecutive object numbers: (first, count).
fn runs(ids: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some((first, n)) if *first + *n == id => *n += 1,
            _ => runs.push((id, 1)),
        }
    }
    runs
}

/// A classic table: one subsection per run, 20-byte entries (§7.5.4).
fn write_xref_table(out: &mut Vec<u8>, offsets: &BTreeMap<ObjectId, u64>, trailer: &[u8]) {
    out.extend_from_slice(b"xref\n");
    let entries: Vec<(ObjectId, u64)> = offsets.iter().map(|(k, v)| (*k, *v)).collect();
    let mut i = 0;
    for (first, n) in runs(entries.iter().map(|(id, _)| id.0)) {
        out.extend_from_slice(format!("{first} {n}\n").as_bytes());
        for (id, off) in entries.iter().skip(i).take(n as usize) {
            out.extend_from_slice(format!("{off:010} {:05} n\r\n", id.1).as_bytes());
        }
        i += n as usize;
    }
    out.extend_from_slice(b"trailer\n<<");
    out.extend_from_slice(trailer);
    out.extend_from_slice(b">>\n");
}

/// A cross-reference stream (§7.5.8), uncompressed, including its own entry.
fn write_xref_stream(
    out: &mut Vec<u8>,
    id: ObjectId,
    offsets: &mut BTreeMap<ObjectId, u64>,
    at: u64,
    trailer: &[u8],
) -> Result<(), PdfError> {
    offsets.insert(id, at);
    let width = (1..=8).find(|w| at < 1u64 << (8 * w)).unwrap_or(8);
    let mut data = Vec::with_capacity(offsets.len() * (width + 3));
    for (oid, off) in offsets.iter() {
        data.push(1);
        data.extend_from_slice(&off.to_be_bytes()[8 - width..]);
        data.extend_from_slice(&oid.1.to_be_bytes());
    }
    let index: Vec<String> = runs(offsets.keys().map(|k| k.0))
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    out.extend_from_slice(format!("{} {} obj\n<</Type/XRef", id.0, id.1).as_bytes());
    out.extend_from_slice(trailer);
    out.extend_from_slice(
        format!(
            "/W[1 {width} 2]/Index[{}]/Length {}>>\nstream\n",
            index.join(" "),
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    Ok(())
}

/// The next object number, or an error past the PDF limit (2^23 - 1, Annex C).
pub(crate) fn new_id(next: &mut u32) -> Result<ObjectId, PdfError> {
    if *next >= 8_388_607 {
        return Err(PdfError::Structure("no object number left".into()));
    }
    let id = (*next, 0);
    *next += 1;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_numbers() {
        assert_eq!(
            runs([3, 4, 5, 9, 11, 12].into_iter()),
            vec![(3, 3), (9, 1), (11, 2)]
        );
        assert!(runs(std::iter::empty()).is_empty());
    }

    #[test]
    fn table_entries_are_twenty_bytes() {
        let mut out = Vec::new();
        let offsets = BTreeMap::from([((7, 0), 1234), ((8, 0), 99), ((12, 3), 5)]);
        write_xref_table(&mut out, &offsets, b"/Size 13");
        let text = String::from_utf8(out).unwrap_or_default();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[1], "7 2");
        assert_eq!(lines[2], "0000001234 00000 n\r");
        assert_eq!(lines[5], "0000000005 00003 n\r");
        assert_eq!(lines[2].len() + 1, 20);
    }
}
