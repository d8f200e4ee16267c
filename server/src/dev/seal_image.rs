//! The dev seal's image, `<data-dir>/dev-pki/seal-image.png`: a vermilion square seal
//! (角印) drawn in code, a thick frame around a 2x2 grid as if four characters were
//! carved in it, on a transparent ground. It gives `--dev` a visible (PDF) seal to show
//! without any image file of the operator's; DEVELOPMENT ONLY, like the rest of the
//! directory.

use std::fs;

use hanko_seal::SealImage;

use super::paths::replace_file;
use super::{DevPaths, Report};

/// Its file name under `dev-pki/`.
pub const DEV_SEAL_IMAGE: &str = "seal-image.png";

/// Width and height in pixels.
const SIZE: u32 = 96;
/// Seal-ink vermilion (朱肉), opaque.
const INK: [u8; 4] = [0xd7, 0x26, 0x1e, 0xff];

/// Writes the image unless the file already holds exactly these bytes.
pub(super) fn ensure(paths: &DevPaths, report: &mut Report) -> anyhow::Result<()> {
    let path = paths.pki(DEV_SEAL_IMAGE);
    let png = dev_seal_image()?;
    if fs::read(&path).ok().as_deref() == Some(png.png()) {
        report.reused(path.display());
    } else {
        replace_file(&path, png.png(), 0o644)?;
        report.created(format!("{} (dev seal image)", path.display()));
    }
    Ok(())
}

/// The image, drawn.
fn dev_seal_image() -> anyhow::Result<SealImage> {
    let size = SIZE as usize;
    let mut rgba = vec![0u8; size * size * 4];
    let frame = 8..size - 8; // the seal's outer edge
    let border = 7; // its frame's width
    let middle = size / 2;
    for y in 0..size {
        for x in 0..size {
            let inside = frame.contains(&x) && frame.contains(&y);
            let near_edge = x < frame.start + border
                || x >= frame.end - border
                || y < frame.start + border
                || y >= frame.end - border;
            // The grid: a cross through the middle, thinner than the frame.
            let on_grid = x.abs_diff(middle) < 2 || y.abs_diff(middle) < 2;
            if inside && (near_edge || on_grid) {
                let at = (y * size + x) * 4;
                rgba[at..at + 4].copy_from_slice(&INK);
            }
        }
    }
    Ok(SealImage::from_rgba(SIZE, SIZE, &rgba)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_dev_seal_decodes_with_zlib_to_its_pixels() {
        let img = dev_seal_image().unwrap();
        assert_eq!((img.header().width, img.header().height), (SIZE, SIZE));
        // A decoder we did not write: Python's zlib inflates the IDAT data; every row is
        // filter 0 and the pixels are ink or transparent, the corner transparent and the
        // frame inked.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.png");
        fs::write(&path, img.png()).unwrap();
        let script = r#"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
pos, idat = 8, b""
while pos < len(data):
    n, = struct.unpack(">I", data[pos:pos + 4]); kind = data[pos + 4:pos + 8]
    if kind == b"IDAT": idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
w = 96; row = 1 + 4 * w
assert len(raw) == row * w, len(raw)
assert all(raw[r * row] == 0 for r in range(w))
px = lambda x, y: raw[y * row + 1 + 4 * x: y * row + 5 + 4 * x]
assert px(0, 0) == bytes(4)
assert px(10, 10) == bytes([0xd7, 0x26, 0x1e, 0xff])
print("ok")
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ok",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
