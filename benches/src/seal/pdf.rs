//! The PDFs `hanko-bench seal --pdf` seals, made here so that a run needs no fixture
//! and every run seals the same bytes: one page with a line of text, and an image
//! XObject of pseudo-random pixels (xorshift from a fixed seed, no filter) that brings
//! the file to the size asked for, as scans and photos make real documents large. A
//! classic cross-reference table; nothing the sealer has to repair.
//!
//! The time to seal such a file is the parse (`lopdf` reads every object, the image
//! included), the update, and the hashing of the whole file, which is what the 5 MB
//! row compares with `sha256sum` of the same file.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A PDF of `bytes` bytes (at least [`MIN_BYTES`]; exactly `bytes` above it).
pub(crate) fn padded(bytes: usize) -> Vec<u8> {
    let text = b"BT /F1 24 Tf 72 720 Td (Hanko bench) Tj ET".as_slice();
    let skeleton = build(text, 0);
    // Room for the digits the image's /Width and /Length and the startxref offset
    // gain over the skeleton's.
    let room = skeleton.len() + 3 * bytes.to_string().len() + 4;
    // The image is a row of RGB pixels: its length a multiple of 3.
    let mut pdf = build(text, bytes.saturating_sub(room) / 3 * 3);
    // The last few bytes: a comment line after %%EOF (a parser reads the last
    // startxref backwards from the end, and comments are whitespace to it).
    let gap = bytes.saturating_sub(pdf.len());
    if gap > 0 {
        pdf.resize(pdf.len() + gap - 1, b'%');
        pdf.push(b'\n');
    }
    pdf
}

/// The smallest PDF [`padded`] makes exactly.
pub(crate) const MIN_BYTES: usize = 1024;

/// The document with an image of `pixel_bytes` bytes.
fn build(content: &[u8], pixel_bytes: usize) -> Vec<u8> {
    let mut out: Vec<u8> = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    let width = (pixel_bytes / 3).max(1);
    let objects: Vec<(String, Option<Vec<u8>>)> = vec![
        ("<< /Type /Catalog /Pages 2 0 R >>".into(), None),
        ("<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(), None),
        (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>"
                .into(),
            None,
        ),
        (String::new(), Some(content.to_vec())),
        (
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
            None,
        ),
        (
            format!(
                "/Type /XObject /Subtype /Image /Width {width} /Height 1 \
                 /ColorSpace /DeviceRGB /BitsPerComponent 8"
            ),
            Some(noise(pixel_bytes)),
        ),
    ];
    for (i, (dict, stream)) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = writeln!(Text(&mut out), "{} 0 obj", i + 1);
        match stream {
            None => out.extend_from_slice(dict.as_bytes()),
            Some(data) => {
                let _ = write!(
                    Text(&mut out),
                    "<< {dict} /Length {} >>\nstream\n",
                    data.len()
                );
                out.extend_from_slice(data);
                out.extend_from_slice(b"\nendstream");
            }
        }
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let _ = write!(
        Text(&mut out),
        "xref\n0 {}\n0000000000 65535 f \n",
        offsets.len() + 1
    );
    for o in &offsets {
        let _ = writeln!(Text(&mut out), "{o:010} 00000 n ");
    }
    let _ = write!(
        Text(&mut out),
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    );
    out
}

/// Deterministic pseudo-random bytes (xorshift64*), the same every run.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let take = (n - out.len()).min(8);
        out.extend_from_slice(&v.to_le_bytes()[..take]);
    }
    out
}

/// `fmt::Write` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `sha256sum FILE`, run until at least a second has passed (three runs at least):
/// the file's bytes hashed per second, in MB/s (10^6 bytes), process start included as
/// a user would see it.
pub(crate) fn sha256sum_rate(path: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < 3 || start.elapsed() < Duration::from_secs(1) {
        let out = Command::new("sha256sum")
            .arg(path)
            .output()
            .context("running sha256sum")?;
        if !out.status.success() {
            bail!("sha256sum {} failed", path.display());
        }
        runs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(bytes as f64 * f64::from(runs) / secs / 1e6)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).rposition(|w| w == needle)
    }

    #[test]
    fn padded_pdfs_have_the_size_asked_and_a_valid_xref() {
        for bytes in [MIN_BYTES, 1500, 100_000, 100_001, 1_000_002] {
            let pdf = padded(bytes);
            assert_eq!(pdf.len(), bytes, "{bytes}");
            assert_eq!(pdf, padded(bytes), "deterministic");
            assert!(pdf.starts_with(b"%PDF-1.7\n"));
            let end = find(&pdf, b"startxref\n").unwrap();
            let text = String::from_utf8_lossy(&pdf[end..]).into_owned();
            let startxref: usize = text
                .split("startxref\n")
                .nth(1)
                .and_then(|t| t.lines().next())
                .unwrap()
                .parse()
                .unwrap();
            assert!(pdf[startxref..].starts_with(b"xref\n0 7\n"), "{bytes}");
            // Each xref entry points at its object.
            let table = String::from_utf8_lossy(&pdf[startxref..]).into_owned();
            for (i, line) in table.lines().skip(3).take(6).enumerate() {
                let at: usize = line[..10].parse().unwrap();
                let head = format!("{} 0 obj\n", i + 1);
                assert!(pdf[at..].starts_with(head.as_bytes()), "{bytes}: {i}");
            }
        }
    }

    #[test]
    fn qpdf_finds_no_error_where_it_is_installed() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("bench.pdf");
        std::fs::write(&path, padded(100_000)).unwrap();
        let Ok(out) = Command::new("qpdf").arg("--check").arg(&path).output() else {
            eprintln!("qpdf not installed: skipped");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("No syntax or stream encoding errors"),
            "{text}"
        );
    }
}
