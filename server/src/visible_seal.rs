//! The visible PDF seals of the seal credentials, built once at start-up: each
//! credential with a seal image (`keys[].seal.image`) gets a
//! [`hanko_seal::pades::appearance::VisibleSeal`] that draws its image and, when it has
//! a display name (`keys[].seal.display_name`), the name and the date of sealing in the
//! font of `seal.font` (default: IPAex Gothic from Debian's `fonts-ipaexfont-gothic`).
//!
//! Start-up refuses, naming the credential, an image that does not decode, a display
//! name the font cannot show, and a display name with no font to show it in (the
//! configured file unreadable, or none configured and the Debian default absent). In
//! `--dev` a missing font only drops the text, with a warning, so a machine without the
//! package still serves. A credential without an image has no visible seal: a request
//! for one is refused as the caller's error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use hanko_seal::pades::appearance::{DEFAULT_FONT_PATH, DecodedSealImage, SealFont, VisibleSeal};

/// What the configuration says about one credential's visible seal.
#[derive(Clone, Copy, Debug)]
pub struct VisibleSealSource<'a> {
    /// The credential's name.
    pub credential: &'a str,
    /// The organisation's name to show, if any.
    pub display_name: Option<&'a str>,
    /// The seal image (PNG bytes), if any.
    pub image_png: Option<&'a [u8]>,
}

/// The credentials' visible seals, by credential name.
#[derive(Clone, Debug, Default)]
pub struct VisibleSeals(HashMap<String, Arc<VisibleSeal>>);

impl VisibleSeals {
    /// [`VisibleSeals::build`] for `credentials`, each with its metadata's display name
    /// and seal image.
    pub fn for_credentials(
        credentials: &[Arc<hanko_seal::SealCredential>],
        font: Option<&Path>,
        dev: bool,
    ) -> anyhow::Result<Self> {
        let sources: Vec<VisibleSealSource<'_>> = credentials
            .iter()
            .map(|c| VisibleSealSource {
                credential: c.name(),
                display_name: c.metadata().display_name.as_deref(),
                image_png: c.metadata().image.as_ref().map(|i| i.png()),
            })
            .collect();
        Self::build(&sources, font, dev)
    }

    /// Adds `more` (a reload's new credentials).
    pub fn extend(&mut self, more: VisibleSeals) {
        self.0.extend(more.0);
    }

    /// The visible seal of `credential`, `None` when it has no image.
    pub fn get(&self, credential: &str) -> Option<&Arc<VisibleSeal>> {
        self.0.get(credential)
    }

    /// Builds every credential's visible seal; `font` is `seal.font`.
    pub fn build(
        sources: &[VisibleSealSource<'_>],
        font: Option<&Path>,
        dev: bool,
    ) -> anyhow::Result<Self> {
        let wants_text = sources
            .iter()
            .filter(|s| s.image_png.is_some())
            .find_map(|s| s.display_name.map(|_| s.credential));
        let font = match wants_text {
            Some(credential) => load_font(credential, font, dev)?,
            None => None,
        };
        let mut seals = HashMap::new();
        for s in sources {
            let Some(png) = s.image_png else { continue };
            let ctx = || format!("seal credential \"{}\": visible seal", s.credential);
            let image = DecodedSealImage::from_png(png).with_context(ctx)?;
            let name = s.display_name.filter(|_| font.is_some()).map(str::to_owned);
            let seal = VisibleSeal::new(Arc::new(image), name, font.clone()).with_context(ctx)?;
            seals.insert(s.credential.to_owned(), Arc::new(seal));
        }
        Ok(Self(seals))
    }
}

/// The font for the seals' text: `configured`, else the Debian default. `None` (with a
/// warning) only in `--dev` when neither is there.
fn load_font(
    credential: &str,
    configured: Option<&Path>,
    dev: bool,
) -> anyhow::Result<Option<Arc<SealFont>>> {
    let path = match configured {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(DEFAULT_FONT_PATH),
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if configured.is_some() => {
            return Err(e).with_context(|| format!("seal.font: cannot read {}", path.display()));
        }
        Err(e) if dev => {
            tracing::warn!(
                credential,
                font = %path.display(),
                error = %e,
                "visible seals show no text: no font (install fonts-ipaexfont-gothic or set seal.font)"
            );
            return Ok(None);
        }
        Err(e) => bail!(
            "seal credential \"{credential}\" shows its display_name on visible seals, which \
             needs a font: seal.font is not set and the default {} cannot be read ({e}); \
             install Debian's fonts-ipaexfont-gothic or set seal.font to a TrueType font",
            path.display()
        ),
    };
    let font =
        SealFont::from_bytes(bytes).with_context(|| format!("seal.font: {}", path.display()))?;
    tracing::info!(font = font.name(), path = %path.display(), "visible seal font");
    Ok(Some(Arc::new(font)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use hanko_seal::pades::appearance::dev_seal_png;

    use super::*;

    fn source<'a>(name: Option<&'a str>, png: Option<&'a [u8]>) -> VisibleSealSource<'a> {
        VisibleSealSource {
            credential: "city",
            display_name: name,
            image_png: png,
        }
    }

    #[test]
    fn no_image_no_visible_seal_and_no_font_needed() {
        let missing = Path::new("/nonexistent/font.ttf");
        let seals =
            VisibleSeals::build(&[source(Some("City"), None)], Some(missing), false).unwrap();
        assert!(seals.get("city").is_none());
    }

    #[test]
    fn an_image_alone_needs_no_font() {
        let png = dev_seal_png(64);
        let missing = Path::new("/nonexistent/font.ttf");
        let seals = VisibleSeals::build(&[source(None, Some(&png))], Some(missing), false).unwrap();
        assert!(seals.get("city").is_some());
    }

    #[test]
    fn the_debian_default_font_shows_the_name() {
        let png = dev_seal_png(64);
        let seals =
            VisibleSeals::build(&[source(Some("開発市役所"), Some(&png))], None, false).unwrap();
        let seal = seals.get("city").unwrap();
        assert_eq!(
            seal.text_lines(std::time::SystemTime::UNIX_EPOCH, Some("en")),
            ["開発市役所", "1 January 1970"]
        );
    }

    #[test]
    fn a_display_name_without_a_font_stops_the_start_naming_both() {
        let png = dev_seal_png(64);
        let missing = Path::new("/nonexistent/font.ttf");
        let e = VisibleSeals::build(&[source(Some("City"), Some(&png))], Some(missing), false)
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("seal.font: cannot read /nonexistent/font.ttf"),
            "{e:#}"
        );
        // In --dev a configured but missing font is still an error (it was asked for).
        assert!(
            VisibleSeals::build(&[source(Some("City"), Some(&png))], Some(missing), true).is_err()
        );
    }

    #[test]
    fn a_bad_image_or_a_font_that_is_not_one_names_the_credential() {
        let e = VisibleSeals::build(&[source(None, Some(b"not a png"))], None, false).unwrap_err();
        assert!(
            format!("{e:#}").contains("seal credential \"city\""),
            "{e:#}"
        );
        let not_a_font = std::env::current_exe().unwrap();
        let png = dev_seal_png(64);
        let e = VisibleSeals::build(
            &[source(Some("City"), Some(&png))],
            Some(&not_a_font),
            false,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("seal.font"), "{e:#}");
    }
}
