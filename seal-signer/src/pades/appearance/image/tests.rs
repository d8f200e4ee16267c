#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

/// Encodes a PNG of the given colour type and depth from raw samples.
fn encode(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<(&[u8], Option<&[u8]>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if let Some((plte, trns)) = palette {
            enc.set_palette(plte.to_vec());
            if let Some(t) = trns {
                enc.set_trns(t.to_vec());
            }
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
    }
    out
}

/// An 8-bit PNG without palette.
fn png8(w: u32, h: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
    encode(w, h, color, png::BitDepth::Eight, data, None)
}

#[test]
fn rgb_keeps_its_samples_and_has_no_mask() {
    let data: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 10) as u8).collect();
    let png = png8(2, 3, png::ColorType::Rgb, &data);
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(
        (img.width(), img.height(), img.color()),
        (2, 3, ImageColor::Rgb)
    );
    assert_eq!(img.samples(), &data[..]);
    assert!(img.alpha().is_none());
    let (stream, smask) = img.xobjects(None);
    assert!(smask.is_none());
    assert!(stream.dict.get(b"SMask").is_err());
    assert_eq!(
        stream.dict.get(b"ColorSpace").unwrap(),
        &Object::from("DeviceRGB")
    );
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&stream.content).unwrap();
    assert_eq!(inflated, data);
}

#[test]
fn rgba_alpha_becomes_a_soft_mask() {
    // Two pixels: opaque red, half-transparent blue.
    let data = [255, 0, 0, 255, 0, 0, 255, 128];
    let png = png8(2, 1, png::ColorType::Rgba, &data);
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(img.samples(), &[255, 0, 0, 0, 0, 255]);
    assert_eq!(img.alpha(), Some(&[255, 128][..]));
    let id = (7, 0);
    let (stream, smask) = img.xobjects(Some(id));
    assert_eq!(stream.dict.get(b"SMask").unwrap(), &Object::Reference(id));
    let smask = smask.unwrap();
    assert_eq!(
        smask.dict.get(b"ColorSpace").unwrap(),
        &Object::from("DeviceGray")
    );
    let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&smask.content).unwrap();
    assert_eq!(inflated, [255, 128]);
}

#[test]
fn fully_opaque_alpha_is_dropped() {
    let data = [10, 20, 30, 255, 40, 50, 60, 255];
    let png = png8(2, 1, png::ColorType::Rgba, &data);
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert!(img.alpha().is_none());
    assert_eq!(img.samples(), &[10, 20, 30, 40, 50, 60]);
}

#[test]
fn palette_with_transparency_is_expanded() {
    // 2-bit palette: index 0 = transparent white, 1 = red, 2 = dark red.
    let plte = [255, 255, 255, 220, 0, 0, 120, 0, 0];
    let trns = [0];
    // Pixels 0,1,2,1 packed at 2 bits: 00 01 10 01.
    let png = encode(
        4,
        1,
        png::ColorType::Indexed,
        png::BitDepth::Two,
        &[0b0001_1001],
        Some((&plte, Some(&trns))),
    );
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(img.color(), ImageColor::Rgb);
    assert_eq!(
        img.samples(),
        &[255, 255, 255, 220, 0, 0, 120, 0, 0, 220, 0, 0]
    );
    assert_eq!(img.alpha(), Some(&[0, 255, 255, 255][..]));
}

#[test]
fn palette_without_transparency_has_no_mask() {
    let plte = [0, 0, 0, 200, 10, 10];
    let png = encode(
        8,
        1,
        png::ColorType::Indexed,
        png::BitDepth::One,
        &[0b1010_1010],
        Some((&plte, None)),
    );
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert!(img.alpha().is_none());
    assert_eq!(&img.samples()[..6], &[200, 10, 10, 0, 0, 0]);
}

#[test]
fn sixteen_bit_grey_is_reduced_to_eight() {
    // Big-endian 16-bit samples: 0xFF00 and 0x1234 keep their high byte.
    let png = encode(
        2,
        1,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &[0xFF, 0x00, 0x12, 0x34],
        None,
    );
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(img.color(), ImageColor::Gray);
    assert_eq!(img.samples(), &[0xFF, 0x12]);
}

#[test]
fn grey_alpha_and_sixteen_bit_rgba() {
    let png = encode(
        2,
        1,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &[9, 0, 200, 255],
        None,
    );
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(
        (img.color(), img.samples(), img.alpha()),
        (ImageColor::Gray, &[9, 200][..], Some(&[0, 255][..]))
    );

    let px = [0xAB, 0xCD, 0x01, 0x02, 0x03, 0x04, 0x7F, 0xFF];
    let png = encode(
        1,
        1,
        png::ColorType::Rgba,
        png::BitDepth::Sixteen,
        &px,
        None,
    );
    let img = DecodedSealImage::from_png(&png).unwrap();
    assert_eq!(
        (img.samples(), img.alpha()),
        (&[0xAB, 0x01, 0x03][..], Some(&[0x7F][..]))
    );
}

#[test]
fn garbage_and_truncated_files_are_refused() {
    assert!(matches!(
        DecodedSealImage::from_png(b"GIF89a...."),
        Err(AppearanceError::BadImage(_))
    ));
    assert!(matches!(
        DecodedSealImage::from_png(b""),
        Err(AppearanceError::BadImage(_))
    ));
    let png = png8(4, 4, png::ColorType::Rgb, &[7; 48]);
    for cut in [8, 20, png.len() / 2, png.len() - 13] {
        let e = DecodedSealImage::from_png(&png[..cut]);
        assert!(
            matches!(e, Err(AppearanceError::BadImage(_))),
            "cut at {cut}: {e:?}"
        );
    }
    // A flipped byte in the image data fails its CRC.
    let mut bad = png.clone();
    let idat = bad.windows(4).position(|w| w == b"IDAT").unwrap();
    bad[idat + 6] ^= 0xFF;
    assert!(matches!(
        DecodedSealImage::from_png(&bad),
        Err(AppearanceError::BadImage(_))
    ));
}

#[test]
fn oversize_images_are_refused_from_the_header() {
    let png = encode(
        MAX_SIDE + 1,
        1,
        png::ColorType::Grayscale,
        png::BitDepth::One,
        &vec![0; (MAX_SIDE as usize + 1).div_ceil(8)],
        None,
    );
    let e = DecodedSealImage::from_png(&png).unwrap_err();
    assert!(
        matches!(e, AppearanceError::ImageTooLarge { width, height: 1 } if width == MAX_SIDE + 1),
        "{e}"
    );

    // 4096 x 1025 is within MAX_SIDE but over MAX_PIXELS.
    let (w, h) = (MAX_SIDE, 1025);
    let png = encode(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::One,
        &vec![0; (w as usize / 8) * h as usize],
        None,
    );
    assert!(matches!(
        DecodedSealImage::from_png(&png),
        Err(AppearanceError::ImageTooLarge { .. })
    ));

    let big = vec![0; MAX_PNG_BYTES + 1];
    assert!(matches!(
        DecodedSealImage::from_png(&big),
        Err(AppearanceError::ImageFileTooLarge { .. })
    ));
}
