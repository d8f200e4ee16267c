//! PAdES (issue #13) at the crate level: the sealed file is the original bytes plus an
//! update; the ByteRange covers everything but `/Contents`; qpdf and pdfsig accept the
//! result; each refusal has its error and fault class. pyHanko's validation runs in
//! the server's tests, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hanko_pki::HashAlgorithm;
use hanko_seal::pades::lopdf::{Dictionary, Object, ObjectId, Stream};
use hanko_seal::pades::{Appearance, AppearanceContext, NewObjects};
use hanko_seal::{
    Error, Fault, Level, PdfError, PdfSealRequest, Placement, Rect, SealedPdf, TimeStamper as _,
};

use crate::common::{Kind, fixture};

fn pdf_fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pdf");
    std::fs::read(dir.join(name)).unwrap()
}

fn write(name: &str, original: &[u8], sealed: &SealedPdf) -> PathBuf {
    let path = fixture().path(name);
    std::fs::write(&path, [original, &sealed.update].concat()).unwrap();
    path
}

/// `qpdf --check` finds no error and `pdfsig -nocert` says every signature is valid.
fn third_parties_accept(path: &Path, signatures: usize) {
    let q = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&q.stdout);
    assert!(q.status.success(), "{}: {out}", path.display());
    assert!(out.contains("No syntax or stream encoding errors"), "{out}");
    let p = Command::new("pdfsig")
        .arg("-nocert")
        .arg(path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&p.stdout);
    assert_eq!(
        out.matches("Signature is Valid.").count(),
        signatures,
        "{}: {out}",
        path.display()
    );
    assert!(out.contains("Total document signed"), "{out}");
}

/// A stand-in appearance: a red square form XObject (the real one draws the seal
/// image and text).
#[derive(Debug)]
struct RedSquare;

impl Appearance for RedSquare {
    fn normal_appearance(
        &self,
        ctx: &AppearanceContext<'_>,
        objects: &mut NewObjects,
    ) -> Result<ObjectId, PdfError> {
        let (w, h) = (ctx.rect.width, ctx.rect.height);
        let mut dict = Dictionary::new();
        dict.set("Type", Object::Name(b"XObject".to_vec()));
        dict.set("Subtype", Object::Name(b"Form".to_vec()));
        dict.set(
            "BBox",
            Object::Array(vec![0.into(), 0.into(), Object::Real(w), Object::Real(h)]),
        );
        let content = format!("1 0 0 rg 0 0 {w} {h} re f").into_bytes();
        objects.add(Object::Stream(Stream::new(dict, content)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_pdfs_keep_the_original_and_verify() {
    let f = fixture();
    let now = SystemTime::now();
    for file in ["gs-table.pdf", "qpdf-objstm.pdf", "lo-japanese.pdf"] {
        let original = pdf_fixture(file);
        for kind in Kind::ALL {
            for level in [Level::BB, Level::BT] {
                let name = format!("{file}-{}-{level}.pdf", kind.label());
                let request = PdfSealRequest {
                    level,
                    ..PdfSealRequest::default()
                };
                let sealed = f
                    .credential(kind)
                    .seal_pdf(&original, &request, now, Some(&f.tsa), None)
                    .await
                    .unwrap();
                let whole = [&original[..], &sealed.update].concat();
                // The ByteRange: from 0 to /Contents' '<', from after its '>' to the end.
                let [start, a, b, len] = sealed.byte_range;
                let (a, b) = (a as usize, b as usize);
                assert_eq!(start, 0);
                assert_eq!(b + len as usize, whole.len(), "{name}");
                assert!(a > original.len(), "{name}: the original is untouched");
                assert_eq!((whole[a], whole[b - 1]), (b'<', b'>'), "{name}");
                let hex: String = sealed.cms.iter().map(|x| format!("{x:02X}")).collect();
                let contents = std::str::from_utf8(&whole[a + 1..b - 1]).unwrap();
                assert!(contents.starts_with(&hex), "{name}");
                assert!(contents[hex.len()..].bytes().all(|c| c == b'0'), "{name}");
                // What the record says.
                let digest = HashAlgorithm::Sha256.digest_parts(&[&whole[..a], &whole[b..]]);
                assert_eq!(sealed.record.content_digest, digest, "{name}");
                assert_eq!(
                    sealed.record.object_hash,
                    HashAlgorithm::Sha256.digest(&whole),
                    "{name}"
                );
                assert_eq!(sealed.record.time_stamp_time.is_some(), level == Level::BT);
                third_parties_accept(&write(&name, &original, &sealed), 1);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_seal_and_a_visible_one_keep_the_first_valid() {
    let f = fixture();
    let original = pdf_fixture("signed-pyhanko.pdf");
    let cred = f.credential(Kind::P256);
    let request = PdfSealRequest {
        level: Level::BT,
        placement: Placement::Visible {
            page: 1,
            rect: "400,700,120,120".parse().unwrap(),
        },
        ..PdfSealRequest::default()
    };
    let first = cred
        .seal_pdf(
            &original,
            &request,
            SystemTime::now(),
            Some(&f.tsa),
            Some(&RedSquare),
        )
        .await
        .unwrap();
    let once = [&original[..], &first.update].concat();
    let path = write("twice-1.pdf", &original, &first);
    third_parties_accept(&path, 2);
    let update = String::from_utf8_lossy(&first.update);
    assert!(update.contains("/AP<</N "), "the widget has its appearance");
    assert!(
        update.contains("/Rect[400.0 700.0 520.0 820.0]"),
        "{update}"
    );

    let second = f
        .credential(Kind::Rsa3072)
        .seal_pdf(
            &once,
            &PdfSealRequest::default(),
            SystemTime::now(),
            None,
            None,
        )
        .await
        .unwrap();
    third_parties_accept(&write("twice-2.pdf", &once, &second), 3);
    assert!(String::from_utf8_lossy(&second.update).contains("/T(HankoSeal2)"));
}

/// Seals `pdf` with `request` (P-256, no TSA, no appearance unless `visible`) and
/// returns the error.
async fn refused(pdf: &[u8], request: PdfSealRequest, visible: bool) -> Error {
    let appearance: Option<&dyn Appearance> = if visible { Some(&RedSquare) } else { None };
    fixture()
        .credential(Kind::P256)
        .seal_pdf(pdf, &request, SystemTime::now(), None, appearance)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_reason() {
    let table = pdf_fixture("gs-table.pdf");
    let default = PdfSealRequest::default();
    let visible = |page, rect: &str| PdfSealRequest {
        placement: Placement::Visible {
            page,
            rect: rect.parse::<Rect>().unwrap(),
        },
        ..PdfSealRequest::default()
    };
    let cases: Vec<(&str, Vec<u8>, PdfSealRequest, bool, &str)> = vec![
        (
            "garbage",
            b"GIF89a not a pdf".to_vec(),
            default,
            false,
            "pdf_unparsable",
        ),
        (
            "truncated",
            table[..1500].to_vec(),
            default,
            false,
            "pdf_unparsable",
        ),
        (
            "encrypted",
            pdf_fixture("encrypted.pdf"),
            default,
            false,
            "pdf_encrypted",
        ),
        (
            "docmdp P=1",
            pdf_fixture("docmdp-nochanges.pdf"),
            default,
            false,
            "pdf_docmdp_forbids",
        ),
        (
            "certify after a signature",
            pdf_fixture("signed-pyhanko.pdf"),
            PdfSealRequest {
                certify: true,
                ..default
            },
            false,
            "pdf_certification_not_first",
        ),
        (
            "page 2 of 1",
            table.clone(),
            PdfSealRequest {
                placement: Placement::Invisible { page: 2 },
                ..default
            },
            false,
            "pdf_page_out_of_range",
        ),
        (
            "page 0",
            table.clone(),
            visible(0, "1,1,10,10"),
            true,
            "pdf_page_out_of_range",
        ),
        (
            "rect off the page",
            table.clone(),
            visible(1, "500,800,200,100"),
            true,
            "pdf_rect_off_page",
        ),
    ];
    for (what, pdf, request, with_appearance, label) in cases {
        let e = refused(&pdf, request, with_appearance).await;
        assert_eq!(e.label(), label, "{what}: {e}");
        assert_eq!(e.fault(), Fault::Caller, "{what}: {e}");
    }
    // A visible seal without an appearance: refused (after the checks of the file and
    // the rectangle), nothing signed.
    let e = refused(&table, visible(1, "10,10,100,100"), false).await;
    assert!(matches!(e, Error::Pdf(PdfError::NoAppearance)), "{e}");
    assert_eq!(e.fault(), Fault::Caller);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_is_sized_from_the_tsa_and_too_small_is_an_error() {
    let f = fixture();
    let table = pdf_fixture("gs-table.pdf");
    let request = PdfSealRequest {
        level: Level::BT,
        ..PdfSealRequest::default()
    };
    // The TSA's own bound holds for its real tokens.
    let bound = f.tsa.max_token_len(HashAlgorithm::Sha256).unwrap();
    let sealed = f
        .credential(Kind::Rsa3072)
        .seal_pdf(&table, &request, SystemTime::now(), Some(&f.tsa), None)
        .await
        .unwrap();
    let reserved = (sealed.byte_range[2] - sealed.byte_range[1] - 2) / 2;
    assert!((sealed.cms.len() as u64) <= reserved);
    assert!(
        bound < 8 * 1024,
        "bound {bound}: measured, not a fixed guess"
    );

    // A TSA that understates its tokens: the CMS does not fit, nothing is returned.
    let liar = f.tsa_ahead(Duration::ZERO).claiming_token_len(Some(16));
    let e = f
        .credential(Kind::Rsa3072)
        .seal_pdf(&table, &request, SystemTime::now(), Some(&liar), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Pdf(PdfError::ContentsTooSmall { .. })),
        "{e}"
    );
    assert_eq!(e.fault(), Fault::System);
}
