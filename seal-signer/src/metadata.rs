//! What an operator says about a seal credential beyond its key and chain: a
//! description, the CAdES levels and the digest-signing algorithms it may be used with,
//! and, for the visible seal of a PDF (PAdES), the organisation's display name and the
//! seal's image (the 公印 as a PNG).
//!
//! The server reads these from its configuration; this crate only checks them and keeps
//! them with the credential ([`crate::SealCredential::with_metadata`]), so every route
//! that seals through a credential (the binary endpoint, CSC `signDoc`, PAdES) obeys the
//! same limits: a level the credential does not allow is refused in
//! [`crate::SealCredential::seal`] as the caller's error, and
//! [`crate::SealCredential::check_digest_algorithm`] is the test for CSC `signHash`.
//!
//! The image is taken as bytes (no I/O here) and checked far enough that a PDF writer
//! can rely on it: the PNG signature, every chunk's length and CRC, an `IHDR` first with
//! a valid bit depth and colour type, at least one `IDAT`, `IEND` last, and limits on
//! its size ([`SealImage::MAX_BYTES`]) and dimensions ([`SealImage::MAX_DIMENSION`]).
//! The pixels are not decoded.

use std::fmt;
use std::sync::Arc;

use hanko_pki::KeyType;
use hanko_pki::alg::DigestSignAlgorithm;

use crate::request::Level;

/// A credential's metadata. The default allows every level and every digest-signing
/// algorithm that fits the key, and has no description, display name or image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealMetadata {
    /// What the credential is for, e.g. "Certificates of residence, Citizens' Division".
    pub description: Option<String>,
    /// The levels it may make (CAdES and PAdES); never empty.
    pub levels: Vec<Level>,
    /// The digest-signing algorithms CSC `signHash` may use with it; `None`: every one
    /// that fits the key ([`DigestSignAlgorithm::for_key`]).
    pub digest_algorithms: Option<Vec<DigestSignAlgorithm>>,
    /// The organisation's name as a visible seal shows it, e.g. "Hanko 開発市役所".
    pub display_name: Option<String>,
    /// The seal's image for a visible seal.
    pub image: Option<SealImage>,
}

impl Default for SealMetadata {
    fn default() -> Self {
        Self {
            description: None,
            levels: vec![Level::BB, Level::BT],
            digest_algorithms: None,
            display_name: None,
            image: None,
        }
    }
}

impl SealMetadata {
    /// Whether seals of `level` may be made.
    pub fn allows_level(&self, level: Level) -> bool {
        self.levels.contains(&level)
    }

    /// The digest-signing algorithms offered for a key of type `key`, in
    /// [`DigestSignAlgorithm::for_key`]'s order.
    pub fn digest_algorithms_for(&self, key: KeyType) -> Vec<DigestSignAlgorithm> {
        let mut all = DigestSignAlgorithm::for_key(key);
        if let Some(allowed) = &self.digest_algorithms {
            all.retain(|a| allowed.contains(a));
        }
        all
    }

    /// The levels as ETSI writes them, comma-separated (for messages).
    pub fn levels_text(&self) -> String {
        let names: Vec<&str> = self.levels.iter().map(|l| l.name()).collect();
        names.join(", ")
    }

    /// Checks the metadata against the key it will be used with: at least one level, and
    /// each allowed digest algorithm fits the key. `Err` names the problem.
    pub fn check(&self, key: Option<KeyType>) -> Result<(), String> {
        if self.levels.is_empty() {
            return Err("no seal level allowed (levels is empty)".to_owned());
        }
        if let Some(allowed) = &self.digest_algorithms {
            if allowed.is_empty() {
                return Err("no digest-signing algorithm allowed (list is empty)".to_owned());
            }
            for a in allowed {
                if !key.is_some_and(|k| a.fits(k)) {
                    return Err(format!("algorithm {a} does not fit the credential's key"));
                }
            }
        }
        Ok(())
    }
}

/// A checked PNG image of a seal (the bytes as configured); see the module docs for what
/// is checked. The visible seal decodes it into a
/// [`crate::pades::appearance::DecodedSealImage`].
#[derive(Clone, PartialEq, Eq)]
pub struct SealImage {
    png: Arc<[u8]>,
    header: PngHeader,
}

impl fmt::Debug for SealImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealImage")
            .field("bytes", &self.png.len())
            .field("header", &self.header)
            .finish()
    }
}

/// The PNG's `IHDR` fields (PNG specification §11.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PngHeader {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per sample (or per palette index).
    pub bit_depth: u8,
    /// 0 greyscale, 2 truecolour, 3 indexed, 4 greyscale with alpha, 6 truecolour with
    /// alpha.
    pub colour_type: u8,
    /// 0 none, 1 Adam7.
    pub interlace: u8,
}

/// Why an image is not accepted as a seal image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seal image refused: {0}")]
pub struct ImageError(String);

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

impl SealImage {
    /// Largest PNG accepted, in bytes (a seal stamp is a few KiB; 1 MiB is generous).
    pub const MAX_BYTES: usize = 1 << 20;
    /// Largest width or height accepted, in pixels.
    pub const MAX_DIMENSION: u32 = 4096;

    /// Checks `png` (see the module docs) and keeps it.
    pub fn from_png(png: Vec<u8>) -> Result<Self, ImageError> {
        let bad = |why: &str| ImageError(why.to_owned());
        if png.len() > Self::MAX_BYTES {
            return Err(ImageError(format!(
                "{} bytes, more than the {} allowed",
                png.len(),
                Self::MAX_BYTES
            )));
        }
        let rest = png
            .strip_prefix(&PNG_SIGNATURE)
            .ok_or_else(|| bad("not a PNG (no PNG signature)"))?;
        let chunks = chunks(rest)?;
        let Some((b"IHDR", ihdr)) = chunks.first().copied() else {
            return Err(bad("the first chunk is not IHDR"));
        };
        let header = parse_ihdr(ihdr)?;
        if !chunks.iter().any(|(t, _)| *t == b"IDAT") {
            return Err(bad("no IDAT chunk (no image data)"));
        }
        if header.colour_type == 3 && !chunks.iter().any(|(t, _)| *t == b"PLTE") {
            return Err(bad("an indexed-colour image without a PLTE chunk"));
        }
        Ok(Self {
            png: png.into(),
            header,
        })
    }

    /// The PNG as given.
    pub fn png(&self) -> &[u8] {
        &self.png
    }

    /// Its `IHDR`.
    pub fn header(&self) -> PngHeader {
        self.header
    }
}

/// A PNG chunk: its type and its data.
type Chunk<'a> = (&'a [u8; 4], &'a [u8]);

/// The chunks after the signature, (type, data), each with its CRC checked; the last is
/// `IEND` and nothing follows it.
fn chunks(mut rest: &[u8]) -> Result<Vec<Chunk<'_>>, ImageError> {
    let bad = |why: &str| ImageError(why.to_owned());
    let mut out = Vec::new();
    loop {
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated chunk"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad("chunk too long"))?;
        let (ty, after) = after
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated chunk"))?;
        if after.len() < len + 4 {
            return Err(bad("truncated chunk"));
        }
        let (data, after) = after.split_at(len);
        let (crc, after) = after
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated chunk"))?;
        let mut crc_input = Vec::with_capacity(4 + len);
        crc_input.extend_from_slice(ty);
        crc_input.extend_from_slice(data);
        if crc32(&crc_input) != u32::from_be_bytes(*crc) {
            return Err(ImageError(format!(
                "CRC mismatch in chunk {}",
                String::from_utf8_lossy(ty)
            )));
        }
        out.push((ty, data));
        if ty == b"IEND" {
            return if after.is_empty() {
                Ok(out)
            } else {
                Err(bad("bytes after IEND"))
            };
        }
        rest = after;
    }
}

fn parse_ihdr(d: &[u8]) -> Result<PngHeader, ImageError> {
    let bad = |why: &str| ImageError(why.to_owned());
    let [
        w0,
        w1,
        w2,
        w3,
        h0,
        h1,
        h2,
        h3,
        bit_depth,
        colour_type,
        compression,
        filter,
        interlace,
    ] = *d
    else {
        return Err(bad("IHDR is not 13 bytes"));
    };
    let width = u32::from_be_bytes([w0, w1, w2, w3]);
    let height = u32::from_be_bytes([h0, h1, h2, h3]);
    if width == 0 || height == 0 {
        return Err(bad("zero width or height"));
    }
    if width > SealImage::MAX_DIMENSION || height > SealImage::MAX_DIMENSION {
        return Err(ImageError(format!(
            "{width}x{height} pixels, more than {m}x{m}",
            m = SealImage::MAX_DIMENSION
        )));
    }
    let depth_ok = match colour_type {
        0 => matches!(bit_depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(bit_depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(bit_depth, 8 | 16),
        _ => false,
    };
    if !depth_ok {
        return Err(ImageError(format!(
            "bit depth {bit_depth} with colour type {colour_type} is not a PNG combination"
        )));
    }
    if compression != 0 || filter != 0 || interlace > 1 {
        return Err(bad("unknown compression, filter or interlace method"));
    }
    Ok(PngHeader {
        width,
        height,
        bit_depth,
        colour_type,
        interlace,
    })
}

/// CRC-32 (ISO 3309, the PNG and zlib one), bit by bit: images are small and checked
/// once, at start-up.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use hanko_pki::HashAlgorithm;

    fn chunk(ty: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(ty);
        c.extend_from_slice(data);
        let mut crc_in = ty.to_vec();
        crc_in.extend_from_slice(data);
        c.extend_from_slice(&crc32(&crc_in).to_be_bytes());
        c
    }

    /// A 1x1 greyscale PNG: zlib stream of one filter byte and one pixel (stored block).
    fn tiny_png(ihdr: &[u8]) -> Vec<u8> {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend(chunk(b"IHDR", ihdr));
        p.extend(chunk(
            b"IDAT",
            &[
                0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
            ],
        ));
        p.extend(chunk(b"IEND", &[]));
        p
    }

    const GREY_1X1: [u8; 13] = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0];

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn a_small_png_is_accepted_with_its_header() {
        let img = SealImage::from_png(tiny_png(&GREY_1X1)).unwrap();
        assert_eq!(
            img.header(),
            PngHeader {
                width: 1,
                height: 1,
                bit_depth: 8,
                colour_type: 0,
                interlace: 0
            }
        );
        assert_eq!(img.png(), tiny_png(&GREY_1X1).as_slice());
    }

    #[test]
    fn broken_pngs_are_refused_by_name() {
        let e = |p: Vec<u8>| SealImage::from_png(p).unwrap_err().to_string();
        assert!(e(b"GIF89a...".to_vec()).contains("no PNG signature"));
        let mut bad_crc = tiny_png(&GREY_1X1);
        let n = bad_crc.len();
        bad_crc[n - 1] ^= 1;
        assert!(e(bad_crc).contains("CRC mismatch in chunk IEND"));
        let mut trailing = tiny_png(&GREY_1X1);
        trailing.push(0);
        assert!(e(trailing).contains("bytes after IEND"));
        let mut truncated = tiny_png(&GREY_1X1);
        truncated.truncate(truncated.len() - 6);
        assert!(e(truncated).contains("truncated"));
        let mut wide = GREY_1X1;
        wide[0..4].copy_from_slice(&5000u32.to_be_bytes());
        assert!(e(tiny_png(&wide)).contains("5000x1 pixels"));
        let mut odd = GREY_1X1;
        odd[8] = 3; // bit depth 3
        assert!(e(tiny_png(&odd)).contains("bit depth 3"));
        let mut big = tiny_png(&GREY_1X1);
        big.resize(SealImage::MAX_BYTES + 1, 0);
        assert!(e(big).contains("more than the 1048576 allowed"));
        let mut no_idat = PNG_SIGNATURE.to_vec();
        no_idat.extend(chunk(b"IHDR", &GREY_1X1));
        no_idat.extend(chunk(b"IEND", &[]));
        assert!(e(no_idat).contains("no IDAT"));
    }

    #[test]
    fn levels_and_algorithms() {
        let m = SealMetadata {
            levels: vec![Level::BB],
            digest_algorithms: Some(vec![DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256)]),
            ..SealMetadata::default()
        };
        assert!(m.allows_level(Level::BB) && !m.allows_level(Level::BT));
        assert_eq!(
            m.digest_algorithms_for(KeyType::EcP256),
            [DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256)]
        );
        assert!(m.check(Some(KeyType::EcP256)).is_ok());
        assert!(
            m.check(Some(KeyType::Rsa { bits: 3072 }))
                .unwrap_err()
                .contains("does not fit")
        );
        let none = SealMetadata {
            levels: vec![],
            ..SealMetadata::default()
        };
        assert!(none.check(None).unwrap_err().contains("no seal level"));
        let all = SealMetadata::default();
        assert_eq!(all.digest_algorithms_for(KeyType::EcP256).len(), 3);
    }
}
