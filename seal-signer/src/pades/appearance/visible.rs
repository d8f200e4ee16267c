//! One credential's visible seal: its image, the organisation's name and the font,
//! checked once at start-up, drawing the widget appearance of every visible PAdES seal
//! made with that credential ([`crate::pades::Appearance`]).
//!
//! The text, when the credential has a display name, is two lines: the name, and the
//! date of sealing in the document's language (its catalog's `/Lang`;
//! [`sealing_date_text`]) on the day of the signature's `/M`. Without a display name
//! the seal is the image alone, and no font is needed.

use std::sync::Arc;
use std::time::SystemTime;

use lopdf::{Document, Object, ObjectId};

use super::{
    AppearanceError, AppearanceSpec, DecodedSealImage, SealFont, TextPlacement, build_appearance,
    check_lines, sealing_date_text,
};
use crate::pades::{Appearance, AppearanceContext, NewObjects, PdfError};

/// Every character a date line can hold, in any language [`sealing_date_text`] writes:
/// checked against the font at start-up, so a date never fails at sealing time.
const DATE_CHARACTERS: &str =
    "0123456789-年月日 JanuaryFebruaryMarchAprilMayJulySeptemberOctoberNovemberDecember";

/// A credential's visible seal.
#[derive(Clone, Debug)]
pub struct VisibleSeal {
    image: Arc<DecodedSealImage>,
    display_name: Option<String>,
    font: Option<Arc<SealFont>>,
    placement: TextPlacement,
}

impl VisibleSeal {
    /// Checks that the seal can always be drawn: with a display name there must be a
    /// font, and the font must have every character of the name and of any date line.
    pub fn new(
        image: Arc<DecodedSealImage>,
        display_name: Option<String>,
        font: Option<Arc<SealFont>>,
    ) -> Result<Self, AppearanceError> {
        if let Some(name) = &display_name {
            let font = font.as_deref().ok_or(AppearanceError::NoFont)?;
            check_lines(&[name.trim()])?;
            font.shape(name.trim())?;
            font.shape(DATE_CHARACTERS)?;
        }
        Ok(Self {
            image,
            display_name,
            font,
            placement: TextPlacement::Auto,
        })
    }

    /// Puts the text beside or below the image always, instead of by the rectangle's
    /// shape.
    pub fn with_placement(mut self, placement: TextPlacement) -> Self {
        self.placement = placement;
        self
    }

    /// The lines of text for a seal made at `at` on a document in language `lang`.
    pub fn text_lines(&self, at: SystemTime, lang: Option<&str>) -> Vec<String> {
        match &self.display_name {
            Some(name) => vec![name.clone(), sealing_date_text(at, lang)],
            None => Vec::new(),
        }
    }
}

impl Appearance for VisibleSeal {
    fn normal_appearance(
        &self,
        ctx: &AppearanceContext<'_>,
        objects: &mut NewObjects,
    ) -> Result<ObjectId, PdfError> {
        let lang = document_lang(ctx.document);
        let text = self.text_lines(ctx.signing_time, lang.as_deref());
        let spec = AppearanceSpec {
            width: ctx.rect.width,
            height: ctx.rect.height,
            image: &self.image,
            text: &text,
            placement: self.placement,
        };
        let built = build_appearance(&spec, self.font.as_deref(), &mut || objects.reserve().ok())?;
        for (id, object) in built.objects {
            objects.set(id, object);
        }
        Ok(built.form)
    }
}

/// The document's language: the catalog's `/Lang` text string (ASCII or UTF-16BE with
/// a byte order mark), `None` when absent or unreadable.
pub fn document_lang(doc: &Document) -> Option<String> {
    let mut lang = doc.catalog().ok()?.get(b"Lang").ok()?;
    if let Object::Reference(id) = lang {
        lang = doc.get_object(*id).ok()?;
    }
    let bytes = lang.as_str().ok()?;
    let text = match bytes.strip_prefix(&[0xFE, 0xFF]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .filter_map(|p| <[u8; 2]>::try_from(p).ok())
                .map(u16::from_be_bytes)
                .collect();
            String::from_utf16(&units).ok()?
        }
        None => String::from_utf8(bytes.to_vec()).ok()?,
    };
    let text = text.trim();
    (!text.is_empty()
        && text.len() <= 35
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    .then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use lopdf::dictionary;

    use super::*;

    fn doc_with_lang(lang: Option<Object>) -> Document {
        let mut doc = Document::with_version("1.7");
        let mut catalog = dictionary! { "Type" => "Catalog" };
        if let Some(l) = lang {
            catalog.set("Lang", l);
        }
        let id = doc.add_object(catalog);
        doc.trailer.set("Root", id);
        doc
    }

    #[test]
    fn lang_is_read_from_the_catalog() {
        let lit = |s: &str| Object::string_literal(s);
        assert_eq!(
            document_lang(&doc_with_lang(Some(lit("ja-JP")))).as_deref(),
            Some("ja-JP")
        );
        assert_eq!(document_lang(&doc_with_lang(None)), None);
        // UTF-16BE with a byte order mark.
        let utf16 = Object::String(
            vec![0xFE, 0xFF, 0, b'e', 0, b'n'],
            lopdf::StringFormat::Literal,
        );
        assert_eq!(
            document_lang(&doc_with_lang(Some(utf16))).as_deref(),
            Some("en")
        );
        // Not a language tag: ignored, not passed on.
        assert_eq!(
            document_lang(&doc_with_lang(Some(lit("ja JP; drop")))),
            None
        );
        assert_eq!(
            document_lang(&doc_with_lang(Some(Object::Integer(3)))),
            None
        );
        // Behind a reference.
        let mut doc = doc_with_lang(None);
        let l = doc.add_object(lit("en-GB"));
        if let Ok(Object::Dictionary(c)) = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .and_then(|r| doc.get_object_mut(r))
        {
            c.set("Lang", l);
        }
        assert_eq!(document_lang(&doc).as_deref(), Some("en-GB"));
    }

    #[test]
    fn a_display_name_needs_a_font_and_no_name_needs_none() -> Result<(), AppearanceError> {
        let png = super::super::dev_seal_png(32);
        let image = Arc::new(DecodedSealImage::from_png(&png)?);
        let e = VisibleSeal::new(image.clone(), Some("Example City".into()), None);
        assert!(matches!(e, Err(AppearanceError::NoFont)), "{e:?}");
        let plain = VisibleSeal::new(image, None, None)?;
        assert!(plain.text_lines(SystemTime::now(), Some("ja")).is_empty());
        Ok(())
    }
}
