#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

fn counter(start: u32) -> impl FnMut() -> Option<ObjectId> {
    let mut next = start;
    move || {
        next += 1;
        Some((next, 0))
    }
}

fn png_rgba(w: u32, h: u32, alpha: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        let mut writer = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h).flat_map(|_| [200, 0, 0, alpha]).collect();
        writer.write_image_data(&data).unwrap();
    }
    out
}

fn content(obj: &Object) -> String {
    let Object::Stream(s) = obj else {
        panic!("not a stream")
    };
    String::from_utf8(miniz_oxide::inflate::decompress_to_vec_zlib(&s.content).unwrap()).unwrap()
}

#[test]
fn image_only_appearance_is_a_form_with_the_image_drawn_over_the_box() {
    let image = DecodedSealImage::from_png(&png_rgba(4, 2, 255)).unwrap();
    let spec = AppearanceSpec {
        width: 100.0,
        height: 50.0,
        image: &image,
        text: &[],
        placement: TextPlacement::Auto,
    };
    let ap = build_appearance(&spec, None, &mut counter(10)).unwrap();
    assert_eq!(ap.form, (11, 0));
    let ids: Vec<_> = ap.objects.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [(11, 0), (12, 0)],
        "form then image, no mask for an opaque image"
    );
    let (_, form) = &ap.objects[0];
    let dict = &form.as_stream().unwrap().dict;
    assert_eq!(dict.get(b"Subtype").unwrap(), &Object::from("Form"));
    assert_eq!(
        dict.get(b"BBox").unwrap(),
        &Object::Array(vec![
            0.into(),
            0.into(),
            Object::Real(100.0),
            Object::Real(50.0)
        ])
    );
    let res = dict.get(b"Resources").unwrap().as_dict().unwrap();
    let xobj = res.get(b"XObject").unwrap().as_dict().unwrap();
    assert_eq!(xobj.get(b"Im1").unwrap(), &Object::Reference((12, 0)));
    assert!(res.get(b"Font").is_err());
    assert_eq!(content(form), "q 100 0 0 50 0 0 cm /Im1 Do Q\n");
}

#[test]
fn transparent_image_gets_its_mask_object() {
    let image = DecodedSealImage::from_png(&png_rgba(2, 2, 0)).unwrap();
    let spec = AppearanceSpec {
        width: 30.0,
        height: 30.0,
        image: &image,
        text: &["   ".to_owned()],
        placement: TextPlacement::Auto,
    };
    // Blank lines are no text, so no font is needed.
    let ap = build_appearance(&spec, None, &mut counter(0)).unwrap();
    let ids: Vec<_> = ap.objects.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [(1, 0), (2, 0), (3, 0)]);
    let image = ap.objects[1].1.as_stream().unwrap();
    assert_eq!(
        image.dict.get(b"SMask").unwrap(),
        &Object::Reference((3, 0))
    );
}

#[test]
fn refusals_name_what_is_wrong() {
    let image = DecodedSealImage::from_png(&png_rgba(1, 1, 255)).unwrap();
    let spec = |width, height, text: &'static [String]| AppearanceSpec {
        width,
        height,
        image: &image,
        text,
        placement: TextPlacement::Auto,
    };
    for (w, h) in [
        (0.0, 10.0),
        (10.0, -1.0),
        (f32::NAN, 10.0),
        (10.0, f32::INFINITY),
        (20_000.0, 10.0),
    ] {
        let e = build_appearance(&spec(w, h, &[]), None, &mut counter(0)).unwrap_err();
        assert!(matches!(e, AppearanceError::BadRect { .. }), "{w}x{h}: {e}");
        assert_eq!(crate::Error::from(e).fault(), crate::Fault::Caller);
    }
    static ONE: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| vec!["City".into()]);
    let e = build_appearance(&spec(100.0, 100.0, &ONE), None, &mut counter(0)).unwrap_err();
    assert!(matches!(e, AppearanceError::NoFont), "{e}");
    assert_eq!(crate::Error::from(e).fault(), crate::Fault::System);

    static FIVE: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..5).map(|i| format!("line {i}")).collect());
    let e = build_appearance(&spec(100.0, 100.0, &FIVE), None, &mut counter(0)).unwrap_err();
    assert!(matches!(e, AppearanceError::BadText(_)), "{e}");
    static LONG: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["x".repeat(101)]);
    let e = build_appearance(&spec(100.0, 100.0, &LONG), None, &mut counter(0)).unwrap_err();
    assert!(matches!(e, AppearanceError::BadText(_)), "{e}");
}

#[test]
fn exhausted_object_numbers_are_an_error_not_a_panic() {
    let image = DecodedSealImage::from_png(&png_rgba(1, 1, 0)).unwrap();
    let spec = AppearanceSpec {
        width: 10.0,
        height: 10.0,
        image: &image,
        text: &[],
        placement: TextPlacement::Auto,
    };
    // Two numbers left: the form and the image, none for the soft mask.
    let mut left = 2;
    let mut alloc = || {
        (left > 0).then(|| {
            left -= 1;
            (100 - left, 0)
        })
    };
    let e = build_appearance(&spec, None, &mut alloc).unwrap_err();
    assert!(matches!(e, AppearanceError::NoObjectNumbers), "{e}");
}

#[test]
fn numbers_have_no_exponent_and_no_trailing_zeros() {
    assert_eq!(num(100.0), "100");
    assert_eq!(num(12.5), "12.5");
    assert_eq!(num(0.000_01), "0");
    assert_eq!(num(-0.000_1), "0");
    assert_eq!(num(1e-7), "0");
    assert_eq!(num(14_400.0), "14400");
    assert_eq!(num(1.234_56), "1.235");
}
