//! The PDF as the PAdES checks read it: a minimal scanner of its own, not a PDF library.
//! Every `/ByteRange` key in the file leads back to the `N G obj` that holds it, whose
//! dictionary is parsed with a small object lexer that records where the /Contents hex
//! string starts and ends. That is enough for signature dictionaries, which are never in
//! object streams (their /ByteRange must name file offsets).

use crate::time;

/// How deep arrays and dictionaries may nest in a signature dictionary.
const MAX_DEPTH: usize = 16;

/// A PDF object, as far as the checks need it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Obj {
    Name(String),
    Int(i64),
    Real,
    Bool,
    Null,
    Ref,
    /// A literal string, unescaped.
    Str(Vec<u8>),
    /// A hex string: its bytes, and the offsets of its `<` and just after its `>`.
    Hex(Vec<u8>, usize, usize),
    Array(Vec<Obj>),
    Dict(Vec<(String, Obj)>),
}

impl Obj {
    /// What it is, for messages ("a name", "an integer").
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Name(_) => "a name",
            Self::Int(_) => "an integer",
            Self::Real => "a real number",
            Self::Bool => "a boolean",
            Self::Null => "null",
            Self::Ref => "an indirect reference",
            Self::Str(_) => "a literal string",
            Self::Hex(..) => "a hex string",
            Self::Array(_) => "an array",
            Self::Dict(_) => "a dictionary",
        }
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// A lexer over the file from an offset.
struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_ws(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn regular(&mut self) -> &[u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_ws(b) || is_delim(b) {
                break;
            }
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    fn object(&mut self, depth: usize) -> Result<Obj, String> {
        if depth > MAX_DEPTH {
            return Err(format!("objects nested deeper than {MAX_DEPTH}"));
        }
        self.skip_ws();
        let at = self.pos;
        let b = self
            .peek()
            .ok_or("the file ends inside the signature dictionary")?;
        match b {
            b'/' => {
                self.pos += 1;
                let raw = self.regular().to_vec();
                Ok(Obj::Name(name_text(&raw)))
            }
            b'<' if self.buf.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b'>') if self.buf.get(self.pos + 1) == Some(&b'>') => {
                            self.pos += 2;
                            return Ok(Obj::Dict(entries));
                        }
                        Some(b'/') => {
                            let Obj::Name(key) = self.object(depth + 1)? else {
                                return Err("a dictionary key that is not a name".into());
                            };
                            let value = self.object(depth + 1)?;
                            entries.push((key, value));
                        }
                        Some(_) => {
                            return Err(format!(
                                "offset {}: a dictionary key that is not a name",
                                self.pos
                            ));
                        }
                        None => return Err("the file ends inside a dictionary".into()),
                    }
                }
            }
            b'<' => {
                self.pos += 1;
                let mut digits = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'>') => {
                            self.pos += 1;
                            break;
                        }
                        Some(c) if c.is_ascii_hexdigit() => {
                            digits.push(c);
                            self.pos += 1;
                        }
                        Some(c) if is_ws(c) => self.pos += 1,
                        Some(c) => {
                            return Err(format!(
                                "offset {}: byte 0x{c:02x} in a hex string",
                                self.pos
                            ));
                        }
                        None => return Err("the file ends inside a hex string".into()),
                    }
                }
                if !digits.len().is_multiple_of(2) {
                    digits.push(b'0');
                }
                let bytes = hex::decode(&digits).map_err(|e| format!("hex string: {e}"))?;
                Ok(Obj::Hex(bytes, at, self.pos))
            }
            b'(' => self.literal().map(Obj::Str),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Obj::Array(items));
                        }
                        Some(_) => items.push(self.object(depth + 1)?),
                        None => return Err("the file ends inside an array".into()),
                    }
                }
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => {
                let tok = self.regular().to_vec();
                let text = String::from_utf8_lossy(&tok).into_owned();
                if let Ok(n) = text.parse::<i64>() {
                    // `N G R` is a reference.
                    let save = self.pos;
                    self.skip_ws();
                    let gen_ok = {
                        let g = self.regular();
                        !g.is_empty() && g.iter().all(u8::is_ascii_digit)
                    };
                    if gen_ok {
                        self.skip_ws();
                        if self.peek() == Some(b'R')
                            && self
                                .buf
                                .get(self.pos + 1)
                                .is_none_or(|&c| is_ws(c) || is_delim(c))
                        {
                            self.pos += 1;
                            return Ok(Obj::Ref);
                        }
                    }
                    self.pos = save;
                    Ok(Obj::Int(n))
                } else if text.parse::<f64>().is_ok() {
                    Ok(Obj::Real)
                } else {
                    Err(format!("offset {at}: {text:?} is not a number"))
                }
            }
            _ => {
                let tok = self.regular();
                match tok {
                    b"true" | b"false" => Ok(Obj::Bool),
                    b"null" => Ok(Obj::Null),
                    [] => Err(format!("offset {at}: unexpected byte 0x{b:02x}")),
                    other => Err(format!(
                        "offset {at}: unexpected keyword {:?}",
                        String::from_utf8_lossy(other)
                    )),
                }
            }
        }
    }

    /// A literal string from its `(`: balanced parentheses and escapes (ISO 32000-2
    /// §7.3.4.2).
    fn literal(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let b = self.peek().ok_or("the file ends inside a literal string")?;
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(b);
                }
                b'\\' => {
                    let e = self.peek().ok_or("the file ends inside a literal string")?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

/// A name's text, `#xx` escapes decoded.
fn name_text(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'#'
            && let Some(h) = raw.get(i + 1..i + 3)
            && let Ok(v) = hex::decode(h)
        {
            out.extend_from_slice(&v);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One signature dictionary found in the file.
pub(super) struct SigDict {
    /// Its object number, when the `N G obj` header read.
    pub(super) object: Option<u64>,
    /// Its entries.
    entries: Vec<(String, Obj)>,
}

impl SigDict {
    /// The entry `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&Obj> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Every dictionary that holds a `/ByteRange` key, in file order; `Err` entries say
/// where a `/ByteRange` could not be read back to its dictionary.
pub(super) fn signature_dicts(pdf: &[u8]) -> Vec<Result<SigDict, String>> {
    let needle = b"/ByteRange";
    let mut out = Vec::new();
    let mut seen_starts = Vec::new();
    let mut from = 0;
    while let Some(rel) = pdf
        .get(from..)
        .and_then(|rest| rest.windows(needle.len()).position(|w| w == needle))
    {
        let pos = from + rel;
        from = pos + needle.len();
        // The `obj` keyword of the object that holds it (not an `endobj`).
        let Some(obj_at) = pdf[..pos]
            .windows(3)
            .enumerate()
            .rev()
            .find(|(i, w)| *w == b"obj" && !(*i >= 3 && &pdf[i - 3..*i] == b"end"))
            .map(|(i, _)| i)
        else {
            out.push(Err(format!(
                "the /ByteRange at offset {pos} is not inside an object"
            )));
            continue;
        };
        if seen_starts.contains(&obj_at) {
            continue;
        }
        seen_starts.push(obj_at);
        let object = object_number(&pdf[..obj_at]);
        let mut lx = Lexer {
            buf: pdf,
            pos: obj_at + 3,
        };
        lx.skip_ws();
        let start = lx.pos;
        match lx.object(0) {
            Ok(Obj::Dict(entries)) if start < pos && pos < lx.pos => {
                // The signature dictionary itself, or one inside (a field's /V).
                match with_byte_range(entries) {
                    Some(entries) => out.push(Ok(SigDict { object, entries })),
                    None => out.push(Err(format!(
                        "the /ByteRange at offset {pos} is not a key of a dictionary"
                    ))),
                }
            }
            Ok(_) => out.push(Err(format!(
                "the /ByteRange at offset {pos} is not a key of its object's dictionary"
            ))),
            Err(e) => out.push(Err(format!(
                "the dictionary holding the /ByteRange at offset {pos}: {e}"
            ))),
        }
    }
    out
}

/// The first dictionary with a /ByteRange key: `entries`, or one nested in them.
fn with_byte_range(entries: Vec<(String, Obj)>) -> Option<Vec<(String, Obj)>> {
    if entries.iter().any(|(k, _)| k == "ByteRange") {
        return Some(entries);
    }
    entries
        .into_iter()
        .find_map(|(_, v)| nested_with_byte_range(v))
}

fn nested_with_byte_range(v: Obj) -> Option<Vec<(String, Obj)>> {
    match v {
        Obj::Dict(e) => with_byte_range(e),
        Obj::Array(items) => items.into_iter().find_map(nested_with_byte_range),
        _ => None,
    }
}

/// The object number of an `N G ` header ending at the end of `before`.
fn object_number(before: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(before.get(before.len().saturating_sub(24)..)?).ok()?;
    let mut words = text.split_ascii_whitespace().rev();
    let _generation: u64 = words.next()?.parse().ok()?;
    words.next()?.parse().ok()
}

/// A PDF date (ISO 32000-2 §7.9.4), `D:YYYYMMDDHHmmSSOHH'mm`, as Unix seconds.
pub(super) fn pdf_date(s: &[u8]) -> Result<i64, String> {
    let text = std::str::from_utf8(s).map_err(|_| "/M is not ASCII".to_owned())?;
    let bad = || format!("/M {text:?} is not a PDF date");
    let body = text.strip_prefix("D:").ok_or_else(bad)?;
    let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 4 || !digits.len().is_multiple_of(2) || digits.len() > 14 {
        return Err(bad());
    }
    let num = |from: usize, default: u32| -> u32 {
        digits
            .get(from..from + 2)
            .and_then(|d| d.parse().ok())
            .unwrap_or(default)
    };
    let year: i64 = digits[..4].parse().map_err(|_| bad())?;
    let (mo, d, h, mi, sec) = (num(4, 1), num(6, 1), num(8, 0), num(10, 0), num(12, 0));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return Err(bad());
    }
    let rest = &body[digits.len()..];
    let offset = match rest.as_bytes().first() {
        None | Some(b'Z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let tz: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let oh: i64 = tz.get(..2).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
            let om: i64 = tz.get(2..4).and_then(|x| x.parse().ok()).unwrap_or(0);
            let o = oh * 3600 + om * 60;
            if sign == b'+' { o } else { -o }
        }
        Some(_) => return Err(bad()),
    };
    Ok(time::days_from_civil(year, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(sec)
        - offset)
}

/// The four integers of a /ByteRange.
pub(super) fn byte_range(o: Option<&Obj>) -> Result<[usize; 4], String> {
    let Some(Obj::Array(items)) = o else {
        return Err(match o {
            None => "no /ByteRange".into(),
            Some(other) => format!("/ByteRange is {}, not an array", other.kind()),
        });
    };
    let ints: Vec<usize> = items
        .iter()
        .map(|i| match i {
            Obj::Int(n) => usize::try_from(*n).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("/ByteRange holds something other than non-negative integers")?;
    <[usize; 4]>::try_from(ints).map_err(|v| format!("/ByteRange has {} integers, not 4", v.len()))
}

/// The bytes a ByteRange names, if every range lies inside the file.
pub(super) fn covered(pdf: &[u8], br: [usize; 4]) -> Option<Vec<u8>> {
    let [a, b, c, d] = br;
    let first = pdf.get(a..a.checked_add(b)?)?;
    let second = pdf.get(c..c.checked_add(d)?)?;
    Some([first, second].concat())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn dates_and_dictionaries() {
        assert_eq!(pdf_date(b"D:19700101000000Z").unwrap(), 0);
        assert_eq!(pdf_date(b"D:19700101090000+09'00'").unwrap(), 0);
        assert_eq!(pdf_date(b"D:1970010100-01'30").unwrap(), 5400);
        assert!(pdf_date(b"19700101").is_err());
        assert!(pdf_date(b"D:19701301").is_err());
        let pdf = b"%PDF-1.7\n7 0 obj\n<</Type/Sig/M(D\\07220240101000000Z)/Sub#46ilter/ETSI.CAdES.detached/ByteRange[0 1 2 3]/Contents<30 0>/P 3 0 R/N [1.5 true null (a(b)c)]>>\nendobj\n";
        let dicts = signature_dicts(pdf);
        let [Ok(d)] = dicts.as_slice() else {
            panic!(
                "{:?}",
                dicts.iter().map(|d| d.as_ref().err()).collect::<Vec<_>>()
            );
        };
        assert_eq!(d.object, Some(7));
        assert_eq!(
            d.get("SubFilter"),
            Some(&Obj::Name("ETSI.CAdES.detached".into()))
        );
        assert_eq!(d.get("M"), Some(&Obj::Str(b"D:20240101000000Z".to_vec())));
        assert_eq!(byte_range(d.get("ByteRange")).unwrap(), [0, 1, 2, 3]);
        let Some(Obj::Hex(bytes, s, e)) = d.get("Contents") else {
            panic!()
        };
        assert_eq!(bytes, &[0x30, 0x00]);
        assert_eq!(&pdf[*s..*e], b"<30 0>");
        assert_eq!(d.get("P"), Some(&Obj::Ref));
        // Garbage never panics.
        for cut in 0..pdf.len() {
            let _ = signature_dicts(&pdf[..cut]);
        }
    }
}
