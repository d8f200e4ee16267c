//! The visible seal, checked the way a reader sees it: the appearance XObject is put on
//! a one-page PDF as a signature widget at a chosen rectangle (the harness PDF is
//! written with lopdf's writer), poppler renders the page (`pdftoppm -png -r 72`, so one
//! pixel is one point), and the pixels inside the rectangle are compared with the
//! source image scaled to it, those outside must be blank; `pdftotext` must extract the
//! Japanese text and `pdffonts` must report an embedded, subset CID TrueType font with a
//! ToUnicode map.
//!
//! The font is IPAex Gothic from Debian's `fonts-ipaexfont-gothic` (installed by
//! `ops/dev-setup.sh`); the tests fail, naming the package, when it is missing.
//! `HANKO_APPEARANCE_OUT=dir` keeps the rendered pages there for a look.

/// A visible seal made by `SealCredential::seal_pdf` on a real PDF.
mod sealed;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hanko_seal::pades::appearance::{
    AppearanceError, AppearanceSpec, DEFAULT_FONT_PATH, DecodedSealImage, SealFont, TextPlacement,
    build_appearance, dev_seal_png, sealing_date_text,
};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

/// A rendered page: RGB, row by row from the top.
struct Raster {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Raster {
    fn px(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.w + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// A rectangle in PDF points from the page's lower-left corner.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

fn font() -> SealFont {
    let bytes = std::fs::read(DEFAULT_FONT_PATH).unwrap_or_else(|e| {
        panic!(
            "{DEFAULT_FONT_PATH}: {e}; install Debian's fonts-ipaexfont-gothic (ops/dev-setup.sh)"
        )
    });
    SealFont::from_bytes(bytes).unwrap()
}

/// A one-page PDF of `page` = (width, height) points with the appearance as a
/// signature widget's `/AP /N` at `rect`.
fn pdf_with_widget(
    page: (f32, f32),
    rect: Rect,
    image: &DecodedSealImage,
    text: &[String],
    placement: TextPlacement,
    font: Option<&SealFont>,
) -> Result<(Vec<u8>, hanko_seal::pades::appearance::AppearanceObjects), AppearanceError> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let spec = AppearanceSpec {
        width: rect.w,
        height: rect.h,
        image,
        text,
        placement,
    };
    let ap = build_appearance(&spec, font, &mut || Some(doc.new_object_id()))?;
    for (id, obj) in &ap.objects {
        doc.objects.insert(*id, obj.clone());
    }
    let page_id = doc.new_object_id();
    let widget_id = doc.add_object(dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => Object::string_literal("Seal1"),
        "Rect" => vec![rect.x.into(), rect.y.into(), (rect.x + rect.w).into(), (rect.y + rect.h).into()],
        "F" => 4,
        "P" => page_id,
        "AP" => dictionary! { "N" => ap.form },
    });
    let contents = doc.add_object(Stream::new(Dictionary::new(), Vec::new()));
    doc.objects.insert(
        page_id,
        Object::Dictionary(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), page.0.into(), page.1.into()],
            "Contents" => contents,
            "Resources" => Dictionary::new(),
            "Annots" => vec![widget_id.into()],
        }),
    );
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
        }),
    );
    let catalog = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
        "AcroForm" => dictionary! { "Fields" => vec![widget_id.into()] },
    });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    Ok((out, ap))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Renders page 1 at 72 dpi with poppler and keeps a copy under
/// `$HANKO_APPEARANCE_OUT/name.png` when that is set.
fn render(pdf: &[u8], name: &str) -> Raster {
    let dir = tmp();
    let input = dir.path().join("in.pdf");
    std::fs::write(&input, pdf).unwrap();
    let prefix = dir.path().join("page");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "72", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&input)
        .arg(&prefix)
        .output()
        .expect("pdftoppm (Debian poppler-utils, ops/dev-setup.sh)");
    assert!(
        out.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png_path = prefix.with_extension("png");
    if let Some(keep) = std::env::var_os("HANKO_APPEARANCE_OUT") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png_path, PathBuf::from(keep).join(format!("{name}.png"))).unwrap();
        std::fs::copy(
            &input,
            PathBuf::from(std::env::var_os("HANKO_APPEARANCE_OUT").unwrap())
                .join(format!("{name}.pdf")),
        )
        .unwrap();
    }
    decode_rgb(&png_path)
}

fn decode_rgb(path: &Path) -> Raster {
    let mut decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        other => panic!("pdftoppm gave {other:?}"),
    };
    Raster {
        w: info.width as usize,
        h: info.height as usize,
        rgb,
    }
}

fn run(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let dir = tmp();
    let input = dir.path().join("in.pdf");
    std::fs::write(&input, pdf).unwrap();
    let out = Command::new(tool)
        .args(args)
        .arg(&input)
        .args(if tool == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("{tool} (Debian poppler-utils): {e}"));
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The device pixels (top-left origin) a rectangle in points covers on a page `page_h`
/// points tall at 72 dpi: `(left, top, right, bottom)`, right/bottom exclusive.
fn device_box(r: Rect, page_h: f32) -> (usize, usize, usize, usize) {
    let left = r.x.round() as usize;
    let top = (page_h - r.y - r.h).round() as usize;
    (
        left,
        top,
        left + r.w.round() as usize,
        top + r.h.round() as usize,
    )
}

/// The source image's colour at source pixel `(sx, sy)`, composited on white paper.
fn source_colour(img: &DecodedSealImage, sx: usize, sy: usize) -> [u8; 3] {
    let i = sy * img.width() as usize + sx;
    let c = img.color().channels();
    let a = img.alpha().map_or(255u32, |a| u32::from(a[i]));
    let mut out = [0u8; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let s = u32::from(img.samples()[i * c + if c == 1 { 0 } else { k }]);
        *o = ((s * a + 255 * (255 - a)) / 255) as u8;
    }
    out
}

/// The colour the image has all over the source pixels under device pixel `(dx, dy)`
/// of a `dw` x `dh` box and its eight neighbours, or `None` where that footprint holds
/// more than one colour: there the renderer blends (anti-aliasing, resampling) and a
/// pixel comparison says nothing.
fn uniform_colour(
    img: &DecodedSealImage,
    dx: usize,
    dy: usize,
    dw: usize,
    dh: usize,
) -> Option<[u8; 3]> {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let span = |d: usize, dn: usize, n: usize| {
        let lo = (d.saturating_sub(1) * n) / dn;
        let hi = (((d + 2) * n).div_ceil(dn)).min(n);
        lo..hi
    };
    let (xs, ys) = (span(dx, dw, iw), span(dy, dh, ih));
    let first = source_colour(img, xs.start, ys.start);
    for sy in ys {
        for sx in xs.clone() {
            if source_colour(img, sx, sy) != first {
                return None;
            }
        }
    }
    Some(first)
}

/// Compares the rendered pixels over `area` (device box) with the image scaled to it,
/// where the image is uniform around the pixel. Returns the share of those pixels within
/// `tol` on every channel and how many were compared.
fn match_share(
    page: &Raster,
    img: &DecodedSealImage,
    (l, t, r, b): (usize, usize, usize, usize),
    tol: u8,
) -> (f64, usize) {
    let (mut good, mut all) = (0usize, 0usize);
    for y in t..b {
        for x in l..r {
            let Some(want) = uniform_colour(img, x - l, y - t, r - l, b - t) else {
                continue;
            };
            all += 1;
            if want
                .iter()
                .zip(page.px(x, y))
                .all(|(&w, g)| w.abs_diff(g) <= tol)
            {
                good += 1;
            }
        }
    }
    (good as f64 / all.max(1) as f64, all)
}

/// Pixels outside `area` (device box, grown by one pixel for anti-aliasing) that are not
/// white.
fn marks_outside(page: &Raster, (l, t, r, b): (usize, usize, usize, usize)) -> usize {
    let mut n = 0;
    for y in 0..page.h {
        for x in 0..page.w {
            let inside = x + 1 >= l && x <= r && y + 1 >= t && y <= b;
            if !inside && page.px(x, y) != [255, 255, 255] {
                n += 1;
            }
        }
    }
    n
}

/// A test image that shows misplacement, mirroring and wrong scaling: four quadrants
/// of different colours, and a fully transparent column band (paper must show).
fn quadrant_png(w: u32, h: u32) -> Vec<u8> {
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let q = (usize::from(x >= w / 2), usize::from(y >= h / 2));
            let rgb = match q {
                (0, 0) => [200, 16, 32],
                (1, 0) => [20, 160, 40],
                (0, 1) => [30, 40, 210],
                _ => [90, 90, 90],
            };
            let alpha = if (w * 3 / 8..w * 5 / 8).contains(&x) && y < h / 4 {
                0
            } else {
                255
            };
            data.extend_from_slice(&rgb);
            data.push(alpha);
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

#[test]
fn image_lands_on_the_rect_asked_for_and_nowhere_else() {
    let image = DecodedSealImage::from_png(&quadrant_png(64, 48)).unwrap();
    let page = (300.0, 300.0);
    let rect = Rect {
        x: 50.0,
        y: 80.0,
        w: 128.0,
        h: 96.0,
    };
    let (pdf, ap) = pdf_with_widget(page, rect, &image, &[], TextPlacement::Auto, None).unwrap();
    let raster = render(&pdf, "image-only");
    assert_eq!((raster.w, raster.h), (300, 300));
    let area = device_box(rect, page.1);
    assert_eq!(area, (50, 124, 178, 220));
    assert_eq!(
        ap.layout.image.w, 128.0,
        "same aspect: the image fills the rect"
    );
    let (share, compared) = match_share(&raster, &image, area, 8);
    assert!(compared > 128 * 96 * 9 / 10, "{compared} pixels compared");
    assert!(
        share > 0.99,
        "only {:.1} % of the rect matches the image",
        share * 100.0
    );
    // The transparent band shows white paper, not black.
    assert_eq!(raster.px(50 + 64, 124 + 5), [255, 255, 255]);
    assert_eq!(marks_outside(&raster, area), 0);
}

#[test]
fn japanese_text_renders_beside_the_seal_and_is_extractable() {
    let font = font();
    assert_eq!(font.name(), "IPAexGothic");
    let image = DecodedSealImage::from_png(&dev_seal_png(256)).unwrap();
    // 2026-12-01T20:00:00Z: already 2 December in Japan.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_155_200);
    let text = vec![
        "サンプル市役所".to_owned(),
        sealing_date_text(at, Some("ja-JP")),
    ];
    assert_eq!(text[1], "2026年12月2日");
    let page = (595.0, 842.0);
    let rect = Rect {
        x: 300.0,
        y: 60.0,
        w: 240.0,
        h: 80.0,
    };
    let (pdf, ap) =
        pdf_with_widget(page, rect, &image, &text, TextPlacement::Auto, Some(&font)).unwrap();
    let raster = render(&pdf, "japanese-beside");

    // Beside: the square seal takes the rect's full height at its left end.
    let img = ap.layout.image;
    assert_eq!((img.x, img.y, img.w, img.h), (0.0, 0.0, 80.0, 80.0));
    let seal_area = device_box(
        Rect {
            x: rect.x,
            y: rect.y,
            w: 80.0,
            h: 80.0,
        },
        page.1,
    );
    let (share, compared) = match_share(&raster, &image, seal_area, 8);
    assert!(compared > 80 * 80 / 3, "{compared} pixels compared");
    assert!(
        share > 0.99,
        "only {:.1} % of the seal area matches the seal",
        share * 100.0
    );
    // Text: dark pixels right of the seal, none outside the rect.
    let (_, t, r, b) = device_box(rect, page.1);
    let dark = (t..b)
        .flat_map(|y| (seal_area.2 + 2..r).map(move |x| (x, y)))
        .filter(|&(x, y)| raster.px(x, y).iter().all(|&c| c < 100))
        .count();
    assert!(
        dark > 300,
        "only {dark} dark pixels where the text should be"
    );
    assert_eq!(marks_outside(&raster, device_box(rect, page.1)), 0);

    let extracted = run("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert!(
        extracted.contains("サンプル市役所"),
        "pdftotext: {extracted:?}"
    );
    assert!(
        extracted.contains("2026年12月2日"),
        "pdftotext: {extracted:?}"
    );

    let fonts = run("pdffonts", &[], &pdf);
    let row = fonts
        .lines()
        .find(|l| l.contains("IPAexGothic"))
        .unwrap_or_else(|| panic!("{fonts}"));
    assert!(
        row.contains("CID TrueType") && row.contains("Identity-H"),
        "{row}"
    );
    let flags: Vec<&str> = row.split_whitespace().rev().skip(2).take(3).collect();
    assert_eq!(flags, ["yes", "yes", "yes"], "emb sub uni: {row}");
    // A six-letter subset tag, and a subset far smaller than the 6 MB font.
    let name = row.split_whitespace().next().unwrap();
    assert!(
        name.len() == 6 + 1 + "IPAexGothic".len() && name.as_bytes()[6] == b'+',
        "{name}"
    );
    let file = ap
        .objects
        .iter()
        .filter_map(|(_, o)| o.as_stream().ok())
        .find(|s| s.dict.get(b"Length1").is_ok())
        .unwrap();
    assert!(
        file.content.len() < 40_000,
        "font subset is {} bytes",
        file.content.len()
    );
}

#[test]
fn english_text_goes_below_a_palette_seal_in_a_square_rect() {
    let font = font();
    // A 1-bit palette PNG: red on white, no alpha.
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 16, 16);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::One);
        enc.set_palette(vec![255, 255, 255, 200, 16, 32]);
        let rows: Vec<u8> = (0..16u8)
            .flat_map(|y| {
                if !(2..=13).contains(&y) {
                    [0xFF, 0xFF]
                } else {
                    [0xC0, 0x03]
                }
            })
            .collect();
        enc.write_header().unwrap().write_image_data(&rows).unwrap();
    }
    let image = DecodedSealImage::from_png(&png_bytes).unwrap();
    assert!(image.alpha().is_none());
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_155_200);
    let text = vec![
        "Example City".to_owned(),
        sealing_date_text(at, Some("en-GB")),
    ];
    let page = (200.0, 200.0);
    let rect = Rect {
        x: 20.0,
        y: 20.0,
        w: 120.0,
        h: 120.0,
    };
    let (pdf, ap) =
        pdf_with_widget(page, rect, &image, &text, TextPlacement::Auto, Some(&font)).unwrap();
    let raster = render(&pdf, "english-below");
    let img = ap.layout.image;
    assert!(img.y > 0.0 && (img.h - 84.0).abs() < 1e-3, "{img:?}");
    let seal = Rect {
        x: rect.x + img.x,
        y: rect.y + img.y,
        w: img.w,
        h: img.h,
    };
    let (share, compared) = match_share(&raster, &image, device_box(seal, page.1), 8);
    assert!(compared > 84 * 84 / 2, "{compared} pixels compared");
    assert!(share > 0.99, "{:.1} %", share * 100.0);
    assert_eq!(marks_outside(&raster, device_box(rect, page.1)), 0);
    let extracted = run("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert!(extracted.contains("Example City"), "{extracted:?}");
    assert!(extracted.contains("1 December 2026"), "{extracted:?}");
}

#[test]
fn text_the_font_cannot_show_or_a_rect_too_small_is_refused() {
    let font = font();
    let image = DecodedSealImage::from_png(&dev_seal_png(64)).unwrap();
    let spec = |w, h, text| AppearanceSpec {
        width: w,
        height: h,
        image: &image,
        text,
        placement: TextPlacement::Auto,
    };
    let hangul = ["서울특별시".to_owned()];
    let e = build_appearance(&spec(200.0, 60.0, &hangul), Some(&font), &mut || {
        Some((1, 0))
    })
    .unwrap_err();
    assert!(
        matches!(e, AppearanceError::MissingGlyph { ch: '서', .. }),
        "{e}"
    );
    assert!(e.to_string().contains("U+C11C"), "{e}");
    let long = ["株式会社サンプル・ホールディングス".to_owned()];
    let e =
        build_appearance(&spec(60.0, 20.0, &long), Some(&font), &mut || Some((1, 0))).unwrap_err();
    assert!(matches!(e, AppearanceError::TextDoesNotFit { .. }), "{e}");
    assert_eq!(
        hanko_seal::Error::from(e).fault(),
        hanko_seal::Fault::Caller
    );
}
