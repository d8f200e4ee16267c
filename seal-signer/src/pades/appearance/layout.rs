//! Where the image and the text go inside the appearance's box. Pure arithmetic on
//! points and ems, no PDF objects, so it is tested on its own.
//!
//! ```text
//!  beside (box at least BESIDE_RATIO times as wide as tall)     below (otherwise)
//!  ┌──────────┬──────────────────────┐                         ┌──────────────┐
//!  │  image   │ 株式会社サンプル        │                         │    image     │
//!  │ (full h) │ 2026年12月2日          │                         │  (top part)  │
//!  └──────────┴──────────────────────┘                         │  text lines  │
//!                                                              └──────────────┘
//! ```
//!
//! * The image keeps its aspect ratio. With no text it is as large as the box allows,
//!   centred; when its aspect matches the box's it fills the box exactly.
//! * Beside: the image takes the full height (at most [`IMAGE_SHARE_BESIDE`] of the
//!   width), the text is left-aligned in the rest, the block centred vertically.
//! * Below: the image takes at most [`IMAGE_SHARE_BELOW`] of the height, centred
//!   horizontally at the top; the lines are centred under it.
//! * The font size is the largest that lets every line fit the text area's width and
//!   all lines ([`LINE_HEIGHT`] ems each) its height, capped at a quarter of the image's
//!   height so the text does not outweigh the seal, and refused below [`MIN_FONT_SIZE`].

use super::AppearanceError;

/// The box is laid out "beside" when it is at least this many times as wide as tall.
pub const BESIDE_RATIO: f32 = 1.5;
/// At most this share of the width goes to the image when the text is beside it.
pub const IMAGE_SHARE_BESIDE: f32 = 0.5;
/// At most this share of the height goes to the image when the text is below it.
pub const IMAGE_SHARE_BELOW: f32 = 0.7;
/// Line spacing, in ems.
pub const LINE_HEIGHT: f32 = 1.2;
/// Text smaller than this (points) is refused: it could not be read on paper.
pub const MIN_FONT_SIZE: f32 = 4.0;
/// The font size is at most this share of the image's drawn height.
pub const MAX_FONT_SHARE_OF_IMAGE: f32 = 0.25;

/// A rectangle in the appearance's own space (origin at the box's lower-left corner).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    /// Left edge.
    pub x: f32,
    /// Bottom edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// Where the text goes relative to the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextPlacement {
    /// Beside when the box is at least [`BESIDE_RATIO`] times as wide as tall, else below.
    #[default]
    Auto,
    /// To the right of the image.
    Beside,
    /// Under the image.
    Below,
}

/// What the layout needs to know about the text: each line's width in ems and the
/// font's ascent and descent in ems.
#[derive(Clone, Debug, PartialEq)]
pub struct TextMetrics {
    /// Advance width of each line, in ems.
    pub line_widths_em: Vec<f32>,
    /// Ascent above the baseline, in ems.
    pub ascent_em: f32,
    /// Descent below the baseline, in ems (positive).
    pub descent_em: f32,
}

/// The result: where the image is drawn, and each line's baseline origin and size.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The image's drawn rectangle.
    pub image: Area,
    /// The font size in points (0 when there is no text).
    pub font_size: f32,
    /// Each line's baseline origin `(x, y)`, in the order of the lines, top line first.
    pub lines: Vec<(f32, f32)>,
}

/// Lays out an image of aspect `aspect` (width / height) and optional text in a box of
/// `w` x `h` points.
pub fn layout(
    w: f32,
    h: f32,
    aspect: f32,
    text: Option<&TextMetrics>,
    placement: TextPlacement,
) -> Result<Layout, AppearanceError> {
    let text = match text {
        Some(t) if !t.line_widths_em.is_empty() => t,
        _ => {
            let image = fit(
                Area {
                    x: 0.0,
                    y: 0.0,
                    w,
                    h,
                },
                aspect,
                Align::Centre,
            );
            return Ok(Layout {
                image,
                font_size: 0.0,
                lines: Vec::new(),
            });
        }
    };
    let beside = match placement {
        TextPlacement::Beside => true,
        TextPlacement::Below => false,
        TextPlacement::Auto => w >= BESIDE_RATIO * h,
    };
    let gap = 0.05 * w.min(h);
    let n = text.line_widths_em.len() as f32;
    let widest = text.line_widths_em.iter().copied().fold(0.0f32, f32::max);
    // The space a block of n lines takes, in ems: n - 1 line steps plus one line's
    // ascent and descent.
    let block_em = (n - 1.0) * LINE_HEIGHT + text.ascent_em + text.descent_em;

    let (image, text_area) = if beside {
        let slot = Area {
            x: 0.0,
            y: 0.0,
            w: (h * aspect).min(IMAGE_SHARE_BESIDE * w),
            h,
        };
        let image = fit(slot, aspect, Align::Centre);
        let left = image.x + image.w + gap;
        (
            image,
            Area {
                x: left,
                y: 0.0,
                w: w - left,
                h,
            },
        )
    } else {
        let slot_h = IMAGE_SHARE_BELOW * h;
        let slot = Area {
            x: 0.0,
            y: h - slot_h,
            w,
            h: slot_h,
        };
        let image = fit(slot, aspect, Align::Top);
        let text_h = image.y - gap;
        (
            image,
            Area {
                x: 0.0,
                y: 0.0,
                w,
                h: text_h,
            },
        )
    };
    let mut size = MAX_FONT_SHARE_OF_IMAGE * image.h;
    if widest > 0.0 {
        size = size.min(text_area.w / widest);
    }
    if block_em > 0.0 {
        size = size.min(text_area.h / block_em);
    }
    // NaN (a degenerate box) fails too.
    if size.is_nan() || size < MIN_FONT_SIZE {
        return Err(AppearanceError::TextDoesNotFit {
            font_size: size.max(0.0),
            min: MIN_FONT_SIZE,
        });
    }
    let block_h = block_em * size;
    let top = if beside {
        text_area.y + (text_area.h + block_h) / 2.0
    } else {
        text_area.y + text_area.h
    };
    let lines = text
        .line_widths_em
        .iter()
        .enumerate()
        .map(|(i, &wem)| {
            let x = if beside {
                text_area.x
            } else {
                text_area.x + (text_area.w - wem * size) / 2.0
            };
            let y = top - text.ascent_em * size - i as f32 * LINE_HEIGHT * size;
            (x, y)
        })
        .collect();
    Ok(Layout {
        image,
        font_size: size,
        lines,
    })
}

#[derive(Clone, Copy)]
enum Align {
    Centre,
    Top,
}

/// The largest rectangle of the given aspect inside `slot`, centred horizontally and,
/// by `align`, centred or at the top vertically.
fn fit(slot: Area, aspect: f32, align: Align) -> Area {
    let (w, h) = if slot.w / slot.h > aspect {
        (slot.h * aspect, slot.h)
    } else {
        (slot.w, slot.w / aspect)
    };
    let x = slot.x + (slot.w - w) / 2.0;
    let y = match align {
        Align::Centre => slot.y + (slot.h - h) / 2.0,
        Align::Top => slot.y + slot.h - h,
    };
    Area { x, y, w, h }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(widths: &[f32]) -> TextMetrics {
        TextMetrics {
            line_widths_em: widths.to_vec(),
            ascent_em: 0.88,
            descent_em: 0.12,
        }
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    fn inside(inner: Area, w: f32, h: f32) -> bool {
        inner.x >= -1e-3
            && inner.y >= -1e-3
            && inner.x + inner.w <= w + 1e-3
            && inner.y + inner.h <= h + 1e-3
    }

    #[test]
    fn image_alone_fills_a_box_of_its_aspect() -> Result<(), AppearanceError> {
        let l = layout(120.0, 60.0, 2.0, None, TextPlacement::Auto)?;
        assert_eq!(
            l.image,
            Area {
                x: 0.0,
                y: 0.0,
                w: 120.0,
                h: 60.0
            }
        );
        assert!(l.lines.is_empty());
        Ok(())
    }

    #[test]
    fn image_alone_keeps_its_aspect_and_is_centred() -> Result<(), AppearanceError> {
        // A square image in a wide box: full height, centred horizontally.
        let l = layout(200.0, 50.0, 1.0, None, TextPlacement::Auto)?;
        assert_eq!(
            l.image,
            Area {
                x: 75.0,
                y: 0.0,
                w: 50.0,
                h: 50.0
            }
        );
        // A wide image in a tall box: full width, centred vertically.
        let l = layout(40.0, 100.0, 2.0, None, TextPlacement::Auto)?;
        assert_eq!(
            l.image,
            Area {
                x: 0.0,
                y: 40.0,
                w: 40.0,
                h: 20.0
            }
        );
        Ok(())
    }

    #[test]
    fn wide_box_puts_text_beside_a_full_height_image() -> Result<(), AppearanceError> {
        let (w, h) = (240.0, 60.0);
        let l = layout(w, h, 1.0, Some(&metrics(&[8.0, 6.5])), TextPlacement::Auto)?;
        assert_eq!(
            l.image,
            Area {
                x: 0.0,
                y: 0.0,
                w: 60.0,
                h: 60.0
            }
        );
        // Text starts right of the image plus the gap, left-aligned.
        let gap = 0.05 * 60.0;
        assert!(l.lines.iter().all(|&(x, _)| close(x, 60.0 + gap)));
        // Capped at a quarter of the image height (15 pt); 8 em at 15 pt = 120 pt fits
        // in the 177 pt left.
        assert!(close(l.font_size, 15.0), "{}", l.font_size);
        // Lines go down by 1.2 em, and the block is centred vertically.
        let (y0, y1) = (l.lines[0].1, l.lines[1].1);
        assert!(close(y0 - y1, 18.0));
        let top = y0 + 0.88 * 15.0;
        let bottom = y1 - 0.12 * 15.0;
        assert!(close(top - h / 2.0, h / 2.0 - bottom), "{top} {bottom}");
        Ok(())
    }

    #[test]
    fn long_text_shrinks_to_the_width_left() -> Result<(), AppearanceError> {
        let l = layout(
            240.0,
            60.0,
            1.0,
            Some(&metrics(&[30.0])),
            TextPlacement::Auto,
        )?;
        let right = l.lines[0].0 + 30.0 * l.font_size;
        assert!(close(right, 240.0), "{right}");
        Ok(())
    }

    #[test]
    fn square_box_puts_text_centred_below_the_image() -> Result<(), AppearanceError> {
        let (w, h) = (100.0, 100.0);
        let l = layout(w, h, 1.0, Some(&metrics(&[5.0, 4.0])), TextPlacement::Auto)?;
        // The image gets the top 70 %, centred horizontally.
        assert_eq!(
            l.image,
            Area {
                x: 15.0,
                y: 30.0,
                w: 70.0,
                h: 70.0
            }
        );
        // 2 lines: (1.2 + 1.0) em in the 25 pt under the gap.
        let size = 25.0 / 2.2;
        assert!(close(l.font_size, size), "{}", l.font_size);
        for (&(x, _), wem) in l.lines.iter().zip([5.0, 4.0]) {
            assert!(close(x + wem * size / 2.0, 50.0), "line not centred");
        }
        let bottom = l.lines[1].1 - 0.12 * size;
        assert!(close(bottom, 0.0), "{bottom}");
        Ok(())
    }

    #[test]
    fn placement_can_be_forced() -> Result<(), AppearanceError> {
        let m = metrics(&[4.0]);
        let below = layout(240.0, 100.0, 1.0, Some(&m), TextPlacement::Below)?;
        assert!(below.lines[0].1 < below.image.y);
        let beside = layout(100.0, 100.0, 1.0, Some(&m), TextPlacement::Beside)?;
        assert!(beside.lines[0].0 >= beside.image.x + beside.image.w);
        Ok(())
    }

    #[test]
    fn everything_stays_inside_the_box() -> Result<(), AppearanceError> {
        let (mut laid_out, mut refused) = (0, 0);
        for (w, h) in [(300.0, 80.0), (80.0, 300.0), (150.0, 150.0), (100.0, 66.0)] {
            for aspect in [0.5, 1.0, 1.6, 3.0] {
                for placement in [
                    TextPlacement::Auto,
                    TextPlacement::Beside,
                    TextPlacement::Below,
                ] {
                    let m = metrics(&[6.0, 9.0]);
                    let l = match layout(w, h, aspect, Some(&m), placement) {
                        Ok(l) => l,
                        // Text too small is the one refusal allowed.
                        Err(AppearanceError::TextDoesNotFit { .. }) => {
                            refused += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    laid_out += 1;
                    assert!(
                        inside(l.image, w, h),
                        "{w}x{h} {aspect} {placement:?}: {:?}",
                        l.image
                    );
                    assert!(close(l.image.w / l.image.h, aspect));
                    for (&(x, y), wem) in l.lines.iter().zip([6.0, 9.0]) {
                        let line = Area {
                            x,
                            y: y - 0.12 * l.font_size,
                            w: wem * l.font_size,
                            h: l.font_size,
                        };
                        assert!(
                            inside(line, w, h),
                            "{w}x{h} {aspect} {placement:?}: {line:?}"
                        );
                    }
                }
            }
        }
        // 48 cases; only extreme ones (a wide image beside text in a tall box) refuse.
        assert!(laid_out >= 40, "{laid_out} laid out, {refused} refused");
        Ok(())
    }

    #[test]
    fn text_too_small_to_read_is_refused() {
        let e = layout(
            20.0,
            20.0,
            1.0,
            Some(&metrics(&[12.0])),
            TextPlacement::Auto,
        );
        assert!(
            matches!(e, Err(AppearanceError::TextDoesNotFit { .. })),
            "{e:?}"
        );
    }
}
