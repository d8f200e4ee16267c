//! A stand-in seal image for `--dev` and tests: a red square seal in the style of a
//! 角印 (a company or city-hall seal), drawn by code so no binary file is committed.
//!
//! ```text
//!  ┌━━━━━━━━━━━━━━┓   outer frame, thick
//!  ┃ ┌──────────┐ ┃   inner frame, thin
//!  ┃ │    ┃     │ ┃
//!  ┃ │━━━━╋━━━━━│ ┃   田 ("field"): the simplest kanji that fills a square
//!  ┃ │    ┃     │ ┃
//!  ┃ └──────────┘ ┃
//!  ┗━━━━━━━━━━━━━━┛
//! ```
//!
//! Vermilion seal ink (RGB d7 26 1e) on a transparent background, so it shows what is printed
//! under it, as ink does; hence an RGBA PNG, which exercises the soft mask too. A real
//! deployment configures its own scanned seal per credential.

/// Seal-ink vermilion (朱肉).
pub const SEAL_RED: [u8; 3] = [0xd7, 0x26, 0x1e];

/// Draws the dev seal as an RGBA PNG of `size` x `size` pixels (at least 32).
pub fn dev_seal_png(size: u32) -> Vec<u8> {
    let size = size.max(32);
    let s = size as usize;
    let unit = s / 32; // stroke widths scale with the size
    let outer = (unit * 2).max(2);
    let inset = unit * 4;
    let thin = unit.max(1);
    let mut rgba = vec![0u8; s * s * 4];
    let ink = |x: usize, y: usize| -> bool {
        let in_band = |v: usize, from: usize, width: usize| v >= from && v < from + width;
        let edge = |v: usize, width: usize| v < width || v >= s - width;
        // Outer frame.
        if edge(x, outer) || edge(y, outer) {
            return true;
        }
        // Inside the inner square only from here on.
        let (lo, hi) = (inset, s - inset);
        if x < lo || x >= hi || y < lo || y >= hi {
            return false;
        }
        // Inner frame and the 田 cross, both `thin * 2` wide.
        let w = thin * 2;
        let mid = s / 2 - w / 2;
        in_band(x, lo, w)
            || in_band(x, hi - w, w)
            || in_band(y, lo, w)
            || in_band(y, hi - w, w)
            || in_band(x, mid, w)
            || in_band(y, mid, w)
    };
    for y in 0..s {
        for x in 0..s {
            if ink(x, y) {
                let i = (y * s + x) * 4;
                if let Some(px) = rgba.get_mut(i..i + 4) {
                    px.copy_from_slice(&[SEAL_RED[0], SEAL_RED[1], SEAL_RED[2], 255]);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, size, size);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    // Encoding into a Vec can only fail on a wrong buffer length, which the
    // arithmetic above rules out; an empty result then fails at decoding, loudly.
    let written = enc
        .write_header()
        .and_then(|mut w| w.write_image_data(&rgba));
    match written {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::DecodedSealImage;
    use super::*;

    #[test]
    fn dev_seal_decodes_as_red_ink_on_transparency() -> Result<(), super::super::AppearanceError> {
        let img = DecodedSealImage::from_png(&dev_seal_png(128))?;
        assert_eq!((img.width(), img.height()), (128, 128));
        let alpha = img
            .alpha()
            .ok_or(super::super::AppearanceError::BadImage("no alpha".into()))?;
        let inked = alpha.iter().filter(|&&a| a == 255).count();
        let clear = alpha.iter().filter(|&&a| a == 0).count();
        assert_eq!(inked + clear, alpha.len(), "only ink or nothing");
        // Frame + cross cover a visible but minor part of the square.
        assert!(
            inked * 100 / alpha.len() > 15 && inked * 100 / alpha.len() < 50,
            "{inked}"
        );
        // The corner is frame, the centre is the cross, a quadrant's middle is empty.
        let at = |x: usize, y: usize| alpha[y * 128 + x];
        assert_eq!((at(0, 0), at(64, 64), at(40, 40)), (255, 255, 0));
        let red = &img.samples()[0..3];
        assert_eq!(red, SEAL_RED);
        Ok(())
    }
}
