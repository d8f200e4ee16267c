//! The dev seal's image, `<data-dir>/dev-pki/seal-image.png`: a vermilion square seal
//! (角印) drawn in code (`hanko_seal::pades::appearance::dev_seal_png`), a thick frame
//! around 田, on a transparent ground. It gives `--dev` a visible (PDF) seal to show
//! without any image file of the operator's; DEVELOPMENT ONLY, like the rest of the
//! directory.

use std::fs;

use hanko_seal::SealImage;
use hanko_seal::pades::appearance::dev_seal_png;

use super::paths::replace_file;
use super::{DevPaths, Report};

/// Its file name under `dev-pki/`.
pub const DEV_SEAL_IMAGE: &str = "seal-image.png";

/// Width and height in pixels.
const SIZE: u32 = 96;

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

/// The image: `hanko_seal`'s dev seal (a vermilion frame with 田 inside, transparent
/// around the ink), checked like an operator's image.
fn dev_seal_image() -> anyhow::Result<SealImage> {
    Ok(SealImage::from_png(dev_seal_png(SIZE))?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use hanko_seal::pades::appearance::dev_seal::SEAL_RED;

    use super::*;

    #[test]
    fn the_dev_seal_decodes_to_vermilion_ink_on_transparency() {
        let img = dev_seal_image().unwrap();
        assert_eq!((img.header().width, img.header().height), (SIZE, SIZE));
        // Decoded by the png crate, as the visible seal will decode it.
        let decoded = hanko_seal::pades::appearance::DecodedSealImage::from_png(img.png()).unwrap();
        let alpha = decoded.alpha().unwrap();
        let at = |x: usize, y: usize| alpha[y * SIZE as usize + x];
        assert_eq!(
            (at(0, 0), at(SIZE as usize / 2, SIZE as usize / 2)),
            (255, 255)
        );
        assert_eq!(at(30, 30), 0, "a quadrant of the 田 is transparent");
        assert_eq!(&decoded.samples()[..3], &SEAL_RED);
    }
}
