//! The font of the seal's text: a TrueType font read once at start-up, and per seal a
//! subset of it embedded as a composite font, so Japanese (and any other script the font
//! covers) renders in every viewer and can be extracted as text.
//!
//! ```text
//!  Type0 /Encoding /Identity-H ──/DescendantFonts──> CIDFontType2 /CIDToGIDMap /Identity
//!    └─/ToUnicode CMap (CID -> UTF-16)                  ├─/W widths of the used CIDs
//!                                                       └─/FontDescriptor ─/FontFile2─> subset
//! ```
//!
//! * **Which font.** Any TrueType-outline (`glyf`) font whose OS/2 `fsType` allows
//!   embedding a subset. The Debian default is IPAex Gothic (`fonts-ipaexfont-gothic`,
//!   [`DEFAULT_FONT_PATH`]): it covers JIS X 0208/0213 kanji, kana and Latin, it is
//!   TrueType (so the subset is plain `glyf` glyphs, a CIDFontType2 with FontFile2, the
//!   simplest composite font viewers support), and the IPA Font License lets documents
//!   embed it. Noto Sans CJK in Debian is CFF-based OpenType (`.ttc`), which would need a
//!   CIDFontType0 with an OpenType FontFile3: refused with a clear error instead of half
//!   supported.
//! * **Subset.** The `subsetter` crate (the one Typst and krilla embed fonts with) keeps
//!   only the glyphs used and renumbers them from 1 (0 is `.notdef`); the renumbered
//!   glyph id is the CID (`/CIDToGIDMap /Identity`), so the content stream, `/W` and the
//!   ToUnicode CMap all speak the new numbers. The font name gets the six-letter subset
//!   tag PDF asks for (`ABCDEF+IPAexGothic`), derived from the glyph set so the same
//!   text gives the same bytes.
//! * **No shaping.** One character, one glyph through the font's `cmap`, advances from
//!   `hmtx`, no kerning or ligatures: enough for CJK, kana, Latin names and dates, not
//!   for scripts that need shaping (Arabic, Indic), which a seal's text is not written in.
//!
//! The crate does no I/O: the server reads the file ([`DEFAULT_FONT_PATH`] or its
//! configured path) and hands the bytes to [`SealFont::from_bytes`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lopdf::{Object, ObjectId, Stream, dictionary};
use ttf_parser::{Face, GlyphId, Permissions};

use super::image::deflate;
use super::{AppearanceError, IdAllocator};

/// Where Debian's `fonts-ipaexfont-gothic` installs IPAex Gothic.
pub const DEFAULT_FONT_PATH: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";

/// A TrueType font checked for use in seal appearances.
#[derive(Clone)]
pub struct SealFont {
    data: Vec<u8>,
    /// The PostScript name, restricted to characters a PDF name can carry unescaped.
    ps_name: String,
    units_per_em: u16,
    ascender: i16,
    descender: i16,
    cap_height: i16,
    bbox: [i16; 4],
}

impl std::fmt::Debug for SealFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealFont")
            .field("name", &self.ps_name)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// One line of text turned into glyphs of a [`SealFont`].
#[derive(Clone, Debug, PartialEq)]
pub struct ShapedLine {
    /// Each character's glyph id in the full font, with the character.
    glyphs: Vec<(u16, char)>,
    /// The sum of the advances, in ems.
    width_em: f32,
}

impl ShapedLine {
    /// The line's advance width in ems (multiply by the font size for points).
    pub fn width_em(&self) -> f32 {
        self.width_em
    }
}

impl SealFont {
    /// Checks a font file: it parses, has TrueType outlines, a Unicode `cmap`, and its
    /// `fsType` allows embedding a subset.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self, AppearanceError> {
        let face = Face::parse(&data, 0).map_err(|e| AppearanceError::BadFont(e.to_string()))?;
        let tables = face.tables();
        if tables.glyf.is_none() {
            return Err(AppearanceError::BadFont(
                "no TrueType (glyf) outlines; CFF-based fonts such as Noto Sans CJK are not \
                 supported, use a TrueType font such as IPAex Gothic"
                    .into(),
            ));
        }
        if tables.cmap.is_none() || face.glyph_index('0').is_none() {
            return Err(AppearanceError::BadFont("no Unicode cmap".into()));
        }
        if matches!(face.permissions(), Some(Permissions::Restricted))
            || !face.is_subsetting_allowed()
        {
            return Err(AppearanceError::BadFont(
                "the font's licence flags (OS/2 fsType) forbid embedding a subset".into(),
            ));
        }
        let units_per_em = face.units_per_em();
        if units_per_em == 0 {
            return Err(AppearanceError::BadFont("unitsPerEm is 0".into()));
        }
        let ps_name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .map(|n| {
                n.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect()
            })
            .filter(|n: &String| !n.is_empty())
            .unwrap_or_else(|| "HankoSealFont".to_owned());
        let b = face.global_bounding_box();
        let (ascender, descender) = (face.ascender(), face.descender());
        let cap_height = face.capital_height().unwrap_or(ascender);
        Ok(Self {
            ps_name,
            units_per_em,
            ascender,
            descender,
            cap_height,
            bbox: [b.x_min, b.y_min, b.x_max, b.y_max],
            data,
        })
    }

    /// The font's PostScript name (without subset tag).
    pub fn name(&self) -> &str {
        &self.ps_name
    }

    /// The ascender above the baseline, in ems.
    pub fn ascent_em(&self) -> f32 {
        f32::from(self.ascender) / f32::from(self.units_per_em)
    }

    /// The descender below the baseline, in ems (a positive number).
    pub fn descent_em(&self) -> f32 {
        -f32::from(self.descender) / f32::from(self.units_per_em)
    }

    fn face(&self) -> Result<Face<'_>, AppearanceError> {
        // Parsed once in from_bytes; parsing again only reads the table directory.
        Face::parse(&self.data, 0).map_err(|e| AppearanceError::BadFont(e.to_string()))
    }

    /// Maps a line of text to glyphs. Refuses control characters and characters the font
    /// has no glyph for, naming the character.
    pub fn shape(&self, text: &str) -> Result<ShapedLine, AppearanceError> {
        let face = self.face()?;
        let mut glyphs = Vec::with_capacity(text.len());
        let mut units = 0u64;
        for ch in text.chars() {
            if ch.is_control() {
                return Err(AppearanceError::BadText(format!(
                    "control character U+{:04X}",
                    u32::from(ch)
                )));
            }
            let gid = face.glyph_index(ch).ok_or(AppearanceError::MissingGlyph {
                ch,
                font: self.ps_name.clone(),
            })?;
            units += u64::from(face.glyph_hor_advance(gid).unwrap_or(0));
            glyphs.push((gid.0, ch));
        }
        Ok(ShapedLine {
            glyphs,
            width_em: units as f32 / f32::from(self.units_per_em),
        })
    }

    /// The embedded subset holding the glyphs of `lines`: returns the `Type0` font's
    /// object id, every object to write, and the text of each line as the content
    /// stream's hex string of two-byte CIDs (`<0001 0002 ...>`, without spaces).
    pub(super) fn embed(
        &self,
        lines: &[ShapedLine],
        alloc: &mut dyn IdAllocator,
    ) -> Result<EmbeddedFont, AppearanceError> {
        let face = self.face()?;
        let mut remapper = subsetter::GlyphRemapper::new();
        // CID -> the first character seen for it (for ToUnicode).
        let mut unicode: BTreeMap<u16, char> = BTreeMap::new();
        let mut encoded = Vec::with_capacity(lines.len());
        for line in lines {
            let mut hex = String::with_capacity(line.glyphs.len() * 4);
            for &(gid, ch) in &line.glyphs {
                let cid = remapper.remap(gid);
                unicode.entry(cid).or_insert(ch);
                let _ = write!(hex, "{cid:04X}");
            }
            encoded.push(hex);
        }
        let subset = subsetter::subset(&self.data, 0, &remapper)
            .map_err(|e| AppearanceError::BadFont(format!("subsetting failed: {e}")))?;

        let scale = |v: i16| (f32::from(v) * 1000.0 / f32::from(self.units_per_em)).round() as i64;
        let widths: Vec<Object> = remapper
            .remapped_gids()
            .map(|gid| {
                let adv = face.glyph_hor_advance(GlyphId(gid)).unwrap_or(0);
                Object::Integer(
                    (f32::from(adv) * 1000.0 / f32::from(self.units_per_em)).round() as i64,
                )
            })
            .collect();
        let base_font = format!("{}+{}", subset_tag(&remapper), self.ps_name);

        let [type0, cid_font, descriptor, file, to_unicode] = [
            alloc.id()?,
            alloc.id()?,
            alloc.id()?,
            alloc.id()?,
            alloc.id()?,
        ];
        let mut font_file = Stream::new(
            dictionary! { "Length1" => subset.len() as i64, "Filter" => "FlateDecode" },
            deflate(&subset),
        );
        font_file.allows_compression = false;
        let descriptor_dict = dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => Object::Name(base_font.clone().into_bytes()),
            // Symbolic: the glyphs are addressed by CID, not by a standard encoding.
            "Flags" => 4,
            "FontBBox" => self.bbox.iter().map(|&v| Object::Integer(scale(v))).collect::<Vec<_>>(),
            "ItalicAngle" => 0,
            "Ascent" => scale(self.ascender),
            "Descent" => scale(self.descender),
            "CapHeight" => scale(self.cap_height),
            // Not in TrueType fonts; 80 is the usual value for a regular weight.
            "StemV" => 80,
            "FontFile2" => Object::Reference(file),
        };
        let cid_dict = dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType2",
            "BaseFont" => Object::Name(base_font.clone().into_bytes()),
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
            "FontDescriptor" => Object::Reference(descriptor),
            "DW" => 1000,
            "W" => vec![Object::Integer(0), Object::Array(widths)],
            "CIDToGIDMap" => "Identity",
        };
        let type0_dict = dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => Object::Name(base_font.into_bytes()),
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![Object::Reference(cid_font)],
            "ToUnicode" => Object::Reference(to_unicode),
        };
        let cmap = to_unicode_cmap(&unicode);
        let cmap_stream = Stream::new(
            dictionary! { "Filter" => "FlateDecode" },
            deflate(cmap.as_bytes()),
        )
        .with_compression(false);
        Ok(EmbeddedFont {
            font: type0,
            objects: vec![
                (type0, Object::Dictionary(type0_dict)),
                (cid_font, Object::Dictionary(cid_dict)),
                (descriptor, Object::Dictionary(descriptor_dict)),
                (file, Object::Stream(font_file)),
                (to_unicode, Object::Stream(cmap_stream)),
            ],
            encoded,
        })
    }
}

/// What [`SealFont::embed`] returns.
#[derive(Debug)]
pub(super) struct EmbeddedFont {
    /// The Type0 font, for the form's `/Resources /Font`.
    pub font: ObjectId,
    /// Every object of the font.
    pub objects: Vec<(ObjectId, Object)>,
    /// Each line as hex CIDs, for a `<...> Tj`.
    pub encoded: Vec<String>,
}

/// Six upper-case letters from the glyph set (FNV-1a), as PDF 32000-1 §9.6.4 asks of a
/// subset's name; the same glyphs always give the same tag.
fn subset_tag(remapper: &subsetter::GlyphRemapper) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for gid in remapper.remapped_gids() {
        for b in gid.to_be_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|_| {
            let c = char::from(b'A' + (h % 26) as u8);
            h /= 26;
            c
        })
        .collect()
}

/// The ToUnicode CMap (PDF 32000-1 §9.10.3) mapping each CID to its character, in
/// blocks of at most 100 `bfchar` entries.
fn to_unicode_cmap(unicode: &BTreeMap<u16, char>) -> String {
    let mut s = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = unicode.iter().collect();
    for block in entries.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", block.len());
        for (cid, ch) in block {
            let mut utf16 = [0u16; 2];
            let hex: String = ch
                .encode_utf16(&mut utf16)
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            let _ = writeln!(s, "<{cid:04X}> <{hex}>");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmap_maps_bmp_and_astral_characters() {
        let map = BTreeMap::from([(1, '年'), (2, 'A'), (3, '𠮷')]);
        let cmap = to_unicode_cmap(&map);
        assert!(cmap.contains("3 beginbfchar\n<0001> <5E74>\n<0002> <0041>\n<0003> <D842DFB7>\n"));
        assert!(
            cmap.ends_with("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
        );
    }

    #[test]
    fn cmap_blocks_hold_at_most_100_entries() {
        let map: BTreeMap<u16, char> = (1..=150u16)
            .map(|i| (i, char::from_u32(0x4E00 + u32::from(i)).unwrap_or('?')))
            .collect();
        let cmap = to_unicode_cmap(&map);
        assert!(cmap.contains("100 beginbfchar"));
        assert!(cmap.contains("50 beginbfchar"));
    }

    #[test]
    fn subset_tag_is_six_capitals_and_follows_the_glyphs() {
        let a = subsetter::GlyphRemapper::new_from_glyphs(&[3, 4]);
        let b = subsetter::GlyphRemapper::new_from_glyphs(&[3, 5]);
        let (ta, tb) = (subset_tag(&a), subset_tag(&b));
        assert_eq!(ta.len(), 6);
        assert!(ta.chars().all(|c| c.is_ascii_uppercase()));
        assert_eq!(ta, subset_tag(&a.clone()));
        assert_ne!(ta, tb);
    }

    #[test]
    fn garbage_is_not_a_font() {
        let e = SealFont::from_bytes(b"not a font".to_vec());
        assert!(matches!(e, Err(AppearanceError::BadFont(_))), "{e:?}");
    }
}
