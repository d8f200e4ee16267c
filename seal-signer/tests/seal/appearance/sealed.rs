//! A visible PAdES seal end to end: a LibreOffice PDF in Japanese (`/Lang ja-JP`) sealed
//! by `SealCredential::seal_pdf` with a credential's [`VisibleSeal`] (dev seal image,
//! display name, IPAex Gothic), then rendered by poppler before and after: inside the
//! rectangle the seal image and the text, outside it not one pixel changed; the name and
//! the Japanese date extract; `pdfsig` still finds the signature valid.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::Datelike as _;

use hanko_seal::pades::appearance::{DecodedSealImage, VisibleSeal, dev_seal_png};
use hanko_seal::{Level, PdfSealRequest, Placement, Rect as PdfRect};

use super::{Rect, device_box, font, match_share, render, run};
use crate::common::{Kind, fixture};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/pdf/lo-japanese.pdf"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visible_seal_on_a_japanese_pdf_is_drawn_where_asked_and_changes_nothing_else() {
    let original = std::fs::read(FIXTURE).unwrap();
    let image = Arc::new(DecodedSealImage::from_png(&dev_seal_png(256)).unwrap());
    let visible = VisibleSeal::new(
        image.clone(),
        Some("サンプル市役所".to_owned()),
        Some(Arc::new(font())),
    )
    .unwrap();
    // Right of the text block, below it: blank on the original page.
    let rect = Rect {
        x: 340.0,
        y: 600.0,
        w: 210.0,
        h: 70.0,
    };
    let request = PdfSealRequest {
        level: Level::BB,
        placement: Placement::Visible {
            page: 1,
            rect: PdfRect {
                x: rect.x,
                y: rect.y,
                width: rect.w,
                height: rect.h,
            },
        },
        ..PdfSealRequest::default()
    };
    // The test certificate is valid from a minute ago: seal now, and expect the day in
    // Japan (UTC+9), worked out here on its own.
    let now = SystemTime::now();
    let secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let jst = chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let expected_date = format!("{}年{}月{}日", jst.year(), jst.month(), jst.day());
    let credential = fixture().credential(Kind::P256);
    let sealed = credential
        .seal_pdf(&original, &request, now, None, Some(&visible))
        .await
        .unwrap();
    let pdf = [original.as_slice(), &sealed.update].concat();
    assert!(pdf.starts_with(&original), "an incremental update");

    let before = render(&original, "lo-japanese-before");
    let after = render(&pdf, "lo-japanese-sealed");
    assert_eq!((before.w, before.h), (after.w, after.h));
    let page_h = 841.89;
    let (l, t, r, b) = device_box(rect, page_h);
    let mut changed_outside = 0;
    for y in 0..after.h {
        for x in 0..after.w {
            let near = x + 1 >= l && x <= r && y + 1 >= t && y <= b;
            if !near && before.px(x, y) != after.px(x, y) {
                changed_outside += 1;
            }
        }
    }
    assert_eq!(
        changed_outside, 0,
        "pixels changed outside the seal's rectangle"
    );

    // Beside (210 x 70 is wider than 1.5:1): the square seal at the left, full height.
    let seal_area = device_box(
        Rect {
            x: rect.x,
            y: rect.y,
            w: 70.0,
            h: 70.0,
        },
        page_h,
    );
    let (share, compared) = match_share(&after, &image, seal_area, 8);
    assert!(compared > 70 * 70 / 3, "{compared} pixels compared");
    assert!(
        share > 0.99,
        "only {:.1} % of the seal area matches the seal",
        share * 100.0
    );
    let dark = (t..b)
        .flat_map(|y| (seal_area.2 + 2..r).map(move |x| (x, y)))
        .filter(|&(x, y)| after.px(x, y).iter().all(|&c| c < 100))
        .count();
    assert!(
        dark > 300,
        "only {dark} dark pixels where the text should be"
    );

    let text = run("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert!(
        text.contains("住民票の写し"),
        "the document's own text: {text:?}"
    );
    assert!(text.contains("サンプル市役所"), "{text:?}");
    assert!(
        text.contains(&expected_date),
        "{expected_date}, the date in Japan: {text:?}"
    );

    let sig = run("pdfsig", &[], &pdf);
    assert!(
        sig.contains("Signature Validation: Signature is Valid."),
        "{sig}"
    );
    assert!(sig.contains("Total document signed"), "{sig}");
}
