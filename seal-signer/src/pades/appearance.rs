//! The visible seal: the appearance stream (`/AP /N`) of a PAdES signature widget, an
//! image of the organisation's seal (its red 公印) and, optionally, lines of text beside
//! or below it (the organisation's name, the date of sealing), inside the rectangle the
//! caller asked for.
//!
//! ```text
//!  start-up:  seal PNG ──DecodedSealImage::from_png──> DecodedSealImage  (decoded, deflated once)
//!             font file ──SealFont::from_bytes─> SealFont  (TrueType, embeddable)
//!  per seal:  AppearanceSpec { width, height, image, text lines, placement }
//!               │ SealFont::shape (cmap, advances)    layout::layout (points)
//!               │ SealFont::embed (subset, Type0/CIDFontType2, /W, ToUnicode)
//!               v
//!             AppearanceObjects { form, objects: [(id, Object)] }   ids from the caller's IdAllocator
//! ```
//!
//! The form XObject's `/BBox` is `[0 0 width height]` with the identity `/Matrix`, so a
//! widget whose `/Rect` is `[x y x+width y+height]` shows it unscaled (PDF 32000-1
//! §12.5.5). The image is one image XObject (DeviceRGB or DeviceGray, 8 bits) with a
//! DeviceGray `/SMask` when the PNG has transparency; the text is a subset of the
//! configured font, embedded per seal (a document carries only the glyphs it shows).
//!
//! # The seam with the PDF writer
//! This module makes objects and never writes a file: the caller (the incremental
//! update writer) allocates object ids through [`IdAllocator`] (a closure
//! `|| Some(doc.new_object_id())` will do), writes every object of [`AppearanceObjects::objects`],
//! and puts `/AP << /N form >>` on the widget, where `form` is [`AppearanceObjects::form`].
//!
//! What it does not do: choose the page or check that the rectangle lies on it (the
//! PDF side knows the page boxes), read files (the server does), shape complex
//! scripts (see [`font`]).

pub mod date;
pub mod dev_seal;
pub mod font;
pub mod image;
pub mod layout;
pub mod visible;

use std::fmt::Write as _;

use lopdf::{Object, ObjectId, Stream, dictionary};

pub use date::sealing_date_text;
pub use dev_seal::dev_seal_png;
pub use font::{DEFAULT_FONT_PATH, SealFont};
pub use image::DecodedSealImage;
pub use layout::{Area, Layout, TextPlacement};
pub use visible::VisibleSeal;

/// The largest width or height of an appearance, in points (PDF's default user space
/// limit, 200 inches).
pub const MAX_SIDE_POINTS: f32 = 14_400.0;
/// At most this many lines of text.
pub const MAX_LINES: usize = 4;
/// At most this many characters in one line.
pub const MAX_LINE_CHARS: usize = 100;

/// Hands out fresh object ids for the objects of an appearance. The PDF writer owns the
/// numbering (its next free object number), so it implements this; any
/// `FnMut() -> Option<ObjectId>` closure does. `None`: no object number is left.
pub trait IdAllocator {
    /// A new, unused object id, or `None` when the numbers are exhausted.
    fn next_id(&mut self) -> Option<ObjectId>;

    /// [`IdAllocator::next_id`], its `None` as [`AppearanceError::NoObjectNumbers`].
    fn id(&mut self) -> Result<ObjectId, AppearanceError> {
        self.next_id().ok_or(AppearanceError::NoObjectNumbers)
    }
}

impl<F: FnMut() -> Option<ObjectId>> IdAllocator for F {
    fn next_id(&mut self) -> Option<ObjectId> {
        self()
    }
}

/// What to draw, in a box of `width` x `height` points.
#[derive(Clone, Copy, Debug)]
pub struct AppearanceSpec<'a> {
    /// Width of the box (the widget's rectangle), in points.
    pub width: f32,
    /// Height of the box, in points.
    pub height: f32,
    /// The seal image.
    pub image: &'a DecodedSealImage,
    /// Lines of text, top first; empty lines are skipped; none for the image alone.
    pub text: &'a [String],
    /// Where the text goes.
    pub placement: TextPlacement,
}

/// The objects of one appearance, for the PDF writer.
#[derive(Debug)]
pub struct AppearanceObjects {
    /// The form XObject to reference as the widget's `/AP /N`.
    pub form: ObjectId,
    /// Every object to write: the form, the image and its mask, the font's objects.
    pub objects: Vec<(ObjectId, Object)>,
    /// Where the image and text were put (for tests and logs).
    pub layout: Layout,
}

/// Everything that can go wrong making an appearance. [`crate::Error::fault`] sorts the
/// variants: a rectangle the caller chose is the caller's fault, an image, font or text
/// from the configuration is the operator's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppearanceError {
    /// The seal image file is larger than the limit.
    #[error("seal image is {bytes} bytes, at most {max} accepted")]
    ImageFileTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit ([`image::MAX_PNG_BYTES`]).
        max: usize,
    },
    /// The seal image has more pixels than the limits ([`image::MAX_SIDE`],
    /// [`image::MAX_PIXELS`]).
    #[error("seal image is {width}x{height} pixels, over the limit")]
    ImageTooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The seal image is not a PNG that decodes.
    #[error("seal image is not a valid PNG: {0}")]
    BadImage(String),
    /// The font file is unusable (does not parse, not TrueType, may not be embedded).
    #[error("seal font refused: {0}")]
    BadFont(String),
    /// Text was asked for but no font was configured.
    #[error("the seal appearance has text but no font is configured")]
    NoFont,
    /// The font has no glyph for a character of the text.
    #[error("font {font} has no glyph for {ch:?} (U+{:04X})", u32::from(*ch))]
    MissingGlyph {
        /// The character.
        ch: char,
        /// The font's name.
        font: String,
    },
    /// The text is unusable: too many or too long lines, control characters.
    #[error("seal text refused: {0}")]
    BadText(String),
    /// The rectangle's width or height is not a positive number of points within
    /// [`MAX_SIDE_POINTS`].
    #[error(
        "seal rectangle {width}x{height} refused: sides must be > 0 and <= {MAX_SIDE_POINTS} points"
    )]
    BadRect {
        /// The width asked for.
        width: f32,
        /// The height asked for.
        height: f32,
    },
    /// The PDF writer has no object number left for the appearance's objects.
    #[error("no object numbers left in the PDF for the seal's appearance")]
    NoObjectNumbers,
    /// The rectangle is too small for the text to be readable.
    #[error("seal rectangle too small for its text: {font_size:.1} pt, at least {min} pt needed")]
    TextDoesNotFit {
        /// The largest font size that would fit.
        font_size: f32,
        /// The smallest accepted ([`layout::MIN_FONT_SIZE`]).
        min: f32,
    },
}

/// Builds the appearance's objects. Object ids come from `alloc`, in this order: the
/// form, the image, its soft mask (if any), then the font's five objects (if text).
pub fn build_appearance(
    spec: &AppearanceSpec<'_>,
    font: Option<&SealFont>,
    alloc: &mut dyn IdAllocator,
) -> Result<AppearanceObjects, AppearanceError> {
    let (w, h) = (spec.width, spec.height);
    let side_ok = |v: f32| v.is_finite() && v > 0.0 && v <= MAX_SIDE_POINTS;
    if !side_ok(w) || !side_ok(h) {
        return Err(AppearanceError::BadRect {
            width: w,
            height: h,
        });
    }
    let lines: Vec<&str> = spec
        .text
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    check_lines(&lines)?;
    let shaped = match (lines.is_empty(), font) {
        (true, _) => Vec::new(),
        (false, None) => return Err(AppearanceError::NoFont),
        (false, Some(f)) => lines
            .iter()
            .map(|l| f.shape(l))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let metrics = font
        .filter(|_| !shaped.is_empty())
        .map(|f| layout::TextMetrics {
            line_widths_em: shaped.iter().map(font::ShapedLine::width_em).collect(),
            ascent_em: f.ascent_em(),
            descent_em: f.descent_em(),
        });
    let layout = layout::layout(w, h, spec.image.aspect(), metrics.as_ref(), spec.placement)?;

    let form = alloc.id()?;
    let image_id = alloc.id()?;
    let smask_id = spec.image.alpha().map(|_| alloc.id()).transpose()?;
    let (image, smask) = spec.image.xobjects(smask_id);
    let mut objects = vec![(image_id, Object::Stream(image))];
    if let (Some(id), Some(s)) = (smask_id, smask) {
        objects.push((id, Object::Stream(s)));
    }

    let mut content = String::new();
    let im = layout.image;
    let _ = writeln!(
        content,
        "q {} 0 0 {} {} {} cm /Im1 Do Q",
        num(im.w),
        num(im.h),
        num(im.x),
        num(im.y)
    );
    let mut resources = dictionary! { "XObject" => dictionary! { "Im1" => image_id } };
    if let Some(f) = font.filter(|_| !shaped.is_empty()) {
        let embedded = f.embed(&shaped, alloc)?;
        content.push_str("BT 0 g\n");
        let _ = writeln!(content, "/F1 {} Tf", num(layout.font_size));
        for ((x, y), hex) in layout.lines.iter().zip(&embedded.encoded) {
            let _ = writeln!(content, "1 0 0 1 {} {} Tm <{hex}> Tj", num(*x), num(*y));
        }
        content.push_str("ET\n");
        resources.set("Font", dictionary! { "F1" => embedded.font });
        objects.extend(embedded.objects);
    }
    let form_dict = dictionary! {
        "Type" => "XObject",
        "Subtype" => "Form",
        "FormType" => 1,
        "BBox" => vec![0.into(), 0.into(), Object::Real(w), Object::Real(h)],
        "Matrix" => vec![1.into(), 0.into(), 0.into(), 1.into(), 0.into(), 0.into()],
        "Resources" => resources,
        "Filter" => "FlateDecode",
    };
    let stream = Stream::new(form_dict, image::deflate(content.as_bytes())).with_compression(false);
    objects.insert(0, (form, Object::Stream(stream)));
    Ok(AppearanceObjects {
        form,
        objects,
        layout,
    })
}

/// At most [`MAX_LINES`] lines of at most [`MAX_LINE_CHARS`] characters each.
fn check_lines(lines: &[&str]) -> Result<(), AppearanceError> {
    if lines.len() > MAX_LINES {
        return Err(AppearanceError::BadText(format!(
            "{} lines, at most {MAX_LINES}",
            lines.len()
        )));
    }
    if let Some(long) = lines.iter().find(|l| l.chars().count() > MAX_LINE_CHARS) {
        return Err(AppearanceError::BadText(format!(
            "a line of {} characters, at most {MAX_LINE_CHARS}",
            long.chars().count()
        )));
    }
    Ok(())
}

/// A number for a content stream: at most three decimals, no exponent, no trailing
/// zeros (PDF has no exponent notation).
fn num(v: f32) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests;
