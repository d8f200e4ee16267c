//! The seal image: a PNG decoded once (at start-up, from the credential's configured
//! file) into the samples of a PDF image XObject, compressed once, so each seal only
//! copies bytes.
//!
//! Every PNG colour type is accepted: greyscale, RGB, palette (with or without `tRNS`),
//! grey + alpha and RGBA, at any bit depth. The `png` crate expands palettes and `tRNS`
//! and reduces 16-bit samples to 8 (`Transformations::normalize_to_color8`): a seal on
//! paper needs no more than 8 bits per channel, and one sample layout keeps the PDF side
//! simple. Alpha, when the image has any pixel that is not opaque, becomes a separate
//! DeviceGray image referenced as `/SMask`; colour goes to a DeviceRGB or DeviceGray
//! image. Both are `/FlateDecode` streams.
//!
//! What is refused, each with its own [`AppearanceError`]: more than
//! [`MAX_PNG_BYTES`] of file, a side over [`MAX_SIDE`] pixels or more than
//! [`MAX_PIXELS`] pixels (checked from the header before any pixel is decoded), and
//! anything the `png` crate cannot decode (bad signature, CRC, truncated data).

use lopdf::{Dictionary, Object, Stream, dictionary};

use super::AppearanceError;

/// The largest PNG file accepted, in bytes.
pub const MAX_PNG_BYTES: usize = 8 * 1024 * 1024;
/// The largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 4096;
/// The largest number of pixels accepted (2048 x 2048: a 10 cm seal at 500 dpi).
pub const MAX_PIXELS: u64 = 2048 * 2048;

/// The colour space of a decoded seal image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageColor {
    /// One sample per pixel (`/DeviceGray`).
    Gray,
    /// Three samples per pixel (`/DeviceRGB`).
    Rgb,
}

impl ImageColor {
    fn pdf_name(self) -> &'static str {
        match self {
            Self::Gray => "DeviceGray",
            Self::Rgb => "DeviceRGB",
        }
    }

    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
        }
    }
}

/// A decoded seal image, ready to be written as PDF image XObjects: the pixels of a
/// credential's [`crate::SealImage`] (the checked PNG bytes of `[keys.seal] image`),
/// decoded once at start-up.
#[derive(Clone)]
pub struct DecodedSealImage {
    width: u32,
    height: u32,
    color: ImageColor,
    /// The 8-bit colour samples, row by row, uncompressed (kept for tests and checks).
    samples: Vec<u8>,
    /// The 8-bit alpha samples, when some pixel is not opaque.
    alpha: Option<Vec<u8>>,
    /// `samples`, deflated once.
    samples_deflated: Vec<u8>,
    /// `alpha`, deflated once.
    alpha_deflated: Option<Vec<u8>>,
}

impl std::fmt::Debug for DecodedSealImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedSealImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("color", &self.color)
            .field("alpha", &self.alpha.is_some())
            .finish_non_exhaustive()
    }
}

impl DecodedSealImage {
    /// Decodes a PNG file. Errors name what is wrong with it.
    pub fn from_png(bytes: &[u8]) -> Result<Self, AppearanceError> {
        if bytes.len() > MAX_PNG_BYTES {
            return Err(AppearanceError::ImageFileTooLarge {
                bytes: bytes.len(),
                max: MAX_PNG_BYTES,
            });
        }
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        // The text and ICC chunks are not used: skip them rather than spend time on them.
        decoder.set_ignore_text_chunk(true);
        decoder.set_ignore_iccp_chunk(true);
        let header = decoder.read_header_info().map_err(bad_png)?;
        let (width, height) = (header.width, header.height);
        if width > MAX_SIDE
            || height > MAX_SIDE
            || u64::from(width) * u64::from(height) > MAX_PIXELS
        {
            return Err(AppearanceError::ImageTooLarge { width, height });
        }
        let mut reader = decoder.read_info().map_err(bad_png)?;
        let size = reader
            .output_buffer_size()
            .ok_or(AppearanceError::ImageTooLarge { width, height })?;
        let mut buf = vec![0; size];
        let frame = reader.next_frame(&mut buf).map_err(bad_png)?;
        buf.truncate(frame.buffer_size());
        let (color, has_alpha) = match frame.color_type {
            png::ColorType::Grayscale => (ImageColor::Gray, false),
            png::ColorType::GrayscaleAlpha => (ImageColor::Gray, true),
            png::ColorType::Rgb => (ImageColor::Rgb, false),
            png::ColorType::Rgba => (ImageColor::Rgb, true),
            // normalize_to_color8 expands palettes; a palette here would be a png bug.
            png::ColorType::Indexed => {
                return Err(AppearanceError::BadImage(
                    "palette image was not expanded".into(),
                ));
            }
        };
        if frame.bit_depth != png::BitDepth::Eight {
            return Err(AppearanceError::BadImage(format!(
                "decoded to {:?} bits per sample, 8 expected",
                frame.bit_depth
            )));
        }
        let pixels = usize::try_from(u64::from(width) * u64::from(height))
            .map_err(|_| AppearanceError::ImageTooLarge { width, height })?;
        let channels = color.channels() + usize::from(has_alpha);
        // Rows of 8-bit samples have no padding, so the frame is exactly this long.
        if buf.len() != pixels * channels {
            return Err(AppearanceError::BadImage(format!(
                "decoded {} bytes, {} expected",
                buf.len(),
                pixels * channels
            )));
        }
        let (samples, alpha) = if has_alpha {
            split_alpha(&buf, color.channels())
        } else {
            (buf, None)
        };
        Ok(Self::from_samples(width, height, color, samples, alpha))
    }

    fn from_samples(
        width: u32,
        height: u32,
        color: ImageColor,
        samples: Vec<u8>,
        alpha: Option<Vec<u8>>,
    ) -> Self {
        let samples_deflated = deflate(&samples);
        let alpha_deflated = alpha.as_deref().map(deflate);
        Self {
            width,
            height,
            color,
            samples,
            alpha,
            samples_deflated,
            alpha_deflated,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width divided by height.
    pub fn aspect(&self) -> f32 {
        self.width as f32 / self.height as f32
    }

    /// The colour space of the samples.
    pub fn color(&self) -> ImageColor {
        self.color
    }

    /// The 8-bit colour samples, row by row from the top.
    pub fn samples(&self) -> &[u8] {
        &self.samples
    }

    /// The 8-bit alpha samples, `None` when every pixel is opaque.
    pub fn alpha(&self) -> Option<&[u8]> {
        self.alpha.as_deref()
    }

    /// The image XObject and, when the image has transparency, its soft mask, as
    /// `(image, smask)`; the caller gives the soft mask's object id.
    pub(super) fn xobjects(&self, smask_id: Option<lopdf::ObjectId>) -> (Stream, Option<Stream>) {
        let mut dict = self.image_dict(self.color);
        let smask = match (smask_id, &self.alpha_deflated) {
            (Some(id), Some(alpha)) => {
                dict.set("SMask", Object::Reference(id));
                let d = self.image_dict(ImageColor::Gray);
                Some(Stream::new(d, alpha.clone()).with_compression(false))
            }
            _ => None,
        };
        let image = Stream::new(dict, self.samples_deflated.clone()).with_compression(false);
        (image, smask)
    }

    fn image_dict(&self, color: ImageColor) -> Dictionary {
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => i64::from(self.width),
            "Height" => i64::from(self.height),
            "ColorSpace" => color.pdf_name(),
            "BitsPerComponent" => 8,
            "Filter" => "FlateDecode",
        }
    }
}

fn bad_png(e: png::DecodingError) -> AppearanceError {
    match e {
        png::DecodingError::LimitsExceeded => {
            AppearanceError::BadImage("PNG over the memory limit".into())
        }
        other => AppearanceError::BadImage(other.to_string()),
    }
}

/// Splits interleaved colour + alpha samples. Returns no alpha when every pixel is
/// opaque: an all-opaque mask would only cost bytes.
fn split_alpha(buf: &[u8], channels: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    let stride = channels + 1;
    let mut color = Vec::with_capacity(buf.len() / stride * channels);
    let mut alpha = Vec::with_capacity(buf.len() / stride);
    for px in buf.chunks_exact(stride) {
        let (c, a) = px.split_at(channels);
        color.extend_from_slice(c);
        alpha.extend_from_slice(a);
    }
    if alpha.iter().all(|&a| a == 0xFF) {
        (color, None)
    } else {
        (color, Some(alpha))
    }
}

/// zlib-deflates `data` (PDF's `/FlateDecode` is zlib).
pub(super) fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

#[cfg(test)]
mod tests;
