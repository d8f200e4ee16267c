//! The picture of a visible PAdES seal, for the report to show beside its verdict: the
//! image XObject inside the appearance (`/AP /N`) of the PDF's last signature widget,
//! turned back into a PNG.
//!
//! ```text
//!   PDF ─> lopdf ─> widgets (/Subtype /Widget, /FT /Sig), the last with an /AP /N form
//!       ─> its /Resources /XObject: the first /Subtype /Image (forms searched 3 deep)
//!       ─> 8-bit /DeviceRGB or /DeviceGray samples (FlateDecode or none), /SMask as
//!          alpha ─> PNG
//! ```
//!
//! Only what Hanko's own visible seals are (`hanko-seal`'s `appearance/image.rs`) is
//! read: any other image (JPEG, indexed, 16-bit, ICC) gives no picture, never an error.
//! The caller shows it only for a seal that verified and covers the whole file, so that
//! the appearance is the one that was sealed.

use hanko_seal::pades::lopdf::{Dictionary, Document, Stream};

/// The largest picture decoded, in pixels (what `hanko-seal` accepts).
const MAX_PIXELS: usize = 2048 * 2048;
/// How deep nested form XObjects are searched for the image.
const MAX_DEPTH: usize = 3;

/// The seal's picture as a PNG, or `None` (invisible seal, another kind of image, or a
/// PDF lopdf cannot read).
pub fn seal_picture(pdf: &[u8]) -> Option<Vec<u8>> {
    let doc = Document::load_mem(pdf).ok()?;
    let mut widgets: Vec<(&(u32, u16), &Dictionary)> = doc
        .objects
        .iter()
        .filter_map(|(id, o)| o.as_dict().ok().map(|d| (id, d)))
        .filter(|(_, d)| name_is(d, b"Subtype", b"Widget") && name_is(d, b"FT", b"Sig"))
        .collect();
    widgets.sort_by_key(|(id, _)| **id);
    widgets.iter().rev().find_map(|(_, w)| {
        let ap = w.get_deref(b"AP", &doc).ok()?.as_dict().ok()?;
        let normal = ap.get_deref(b"N", &doc).ok()?.as_stream().ok()?;
        find_image(&doc, normal, 0).and_then(|img| to_png(&doc, img))
    })
}

fn name_is(d: &Dictionary, key: &[u8], value: &[u8]) -> bool {
    d.get(key)
        .ok()
        .and_then(|o| o.as_name().ok())
        .is_some_and(|n| n == value)
}

/// The first image among a form XObject's resources, looking into nested forms.
fn find_image<'a>(doc: &'a Document, form: &'a Stream, depth: usize) -> Option<&'a Stream> {
    if depth > MAX_DEPTH {
        return None;
    }
    let resources = form
        .dict
        .get_deref(b"Resources", doc)
        .ok()?
        .as_dict()
        .ok()?;
    let xobjects = resources.get_deref(b"XObject", doc).ok()?.as_dict().ok()?;
    let streams: Vec<&Stream> = xobjects
        .iter()
        .filter_map(|(_, o)| doc.dereference(o).ok()?.1.as_stream().ok())
        .collect();
    if let Some(img) = streams
        .iter()
        .find(|s| name_is(&s.dict, b"Subtype", b"Image"))
    {
        return Some(img);
    }
    streams
        .iter()
        .filter(|s| name_is(&s.dict, b"Subtype", b"Form"))
        .find_map(|f| find_image(doc, f, depth + 1))
}

/// The 8-bit samples of an image XObject: (width, height, channels, samples).
fn samples(img: &Stream) -> Option<(u32, u32, usize, Vec<u8>)> {
    let int = |k: &[u8]| img.dict.get(k).ok()?.as_i64().ok();
    let width = u32::try_from(int(b"Width")?).ok()?;
    let height = u32::try_from(int(b"Height")?).ok()?;
    if int(b"BitsPerComponent")? != 8 {
        return None;
    }
    let channels = match img.dict.get(b"ColorSpace").ok()?.as_name().ok()? {
        b"DeviceRGB" => 3,
        b"DeviceGray" => 1,
        _ => return None,
    };
    let pixels = usize::try_from(width)
        .ok()?
        .checked_mul(usize::try_from(height).ok()?)?;
    if pixels == 0 || pixels > MAX_PIXELS {
        return None;
    }
    let want = pixels * channels;
    let data = match img.dict.get(b"Filter").ok() {
        None => img.content.clone(),
        Some(f) if f.as_name().ok() == Some(b"FlateDecode".as_slice()) => {
            img.decompressed_content_with_limit(want).ok()?
        }
        Some(_) => return None,
    };
    (data.len() == want).then_some((width, height, channels, data))
}

fn to_png(doc: &Document, img: &Stream) -> Option<Vec<u8>> {
    let (width, height, channels, color) = samples(img)?;
    let alpha = img
        .dict
        .get_deref(b"SMask", doc)
        .ok()
        .and_then(|o| o.as_stream().ok())
        .and_then(samples)
        .filter(|(w, h, c, _)| (*w, *h, *c) == (width, height, 1))
        .map(|(_, _, _, a)| a);
    let (color_type, data) = match alpha {
        None if channels == 3 => (png::ColorType::Rgb, color),
        None => (png::ColorType::Grayscale, color),
        Some(a) => {
            let mut out = Vec::with_capacity(a.len() * (channels + 1));
            for (px, al) in color.chunks_exact(channels).zip(a) {
                out.extend_from_slice(px);
                out.push(al);
            }
            let t = if channels == 3 {
                png::ColorType::Rgba
            } else {
                png::ColorType::GrayscaleAlpha
            };
            (t, out)
        }
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color_type);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&data))
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_picture_in_what_is_not_a_visible_seal() {
        assert!(seal_picture(b"%PDF-1.7\n%%EOF").is_none());
        assert!(seal_picture(b"not a pdf").is_none());
    }
}
