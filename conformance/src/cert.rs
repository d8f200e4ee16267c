//! X.509 certificates as the checks read them (RFC 5280 §4.1), parsed by the tool's own
//! DER reader; and the PEM text they arrive in.

use crate::crypto::AlgId;
use crate::der::{self, DerError, Tlv, tag};
use crate::time;

/// OIDs of the certificate checks.
pub mod oid {
    pub const EKU: &str = "2.5.29.37";
    pub const KEY_USAGE: &str = "2.5.29.15";
    pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    pub const SKI: &str = "2.5.29.14";
    pub const AKI: &str = "2.5.29.35";
    pub const PKUP: &str = "2.5.29.16";
    pub const SAN: &str = "2.5.29.17";
    pub const CERT_POLICIES: &str = "2.5.29.32";
    pub const CRL_DP: &str = "2.5.29.31";
    pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
    pub const QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";
    pub const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
    pub const COUNTRY: &str = "2.5.4.6";
    pub const ORGANIZATION: &str = "2.5.4.10";
    pub const COMMON_NAME: &str = "2.5.4.3";
}

/// One extension.
#[derive(Clone, Debug)]
pub struct Extension {
    /// extnID.
    pub oid: String,
    /// critical (DEFAULT FALSE).
    pub critical: bool,
    /// The contents of extnValue.
    pub value: Vec<u8>,
}

/// A certificate's fields the checks use, with its original encoding.
#[derive(Clone, Debug)]
pub struct Cert {
    /// The whole certificate as received.
    pub der: Vec<u8>,
    /// The TBSCertificate's encoding (what the issuer signed).
    pub tbs: Vec<u8>,
    /// signatureAlgorithm.
    pub sig_alg: AlgId,
    /// The signature value (BIT STRING contents after the unused-bits octet).
    pub signature: Vec<u8>,
    /// The serial number's INTEGER contents.
    pub serial: Vec<u8>,
    /// The issuer Name's encoding.
    pub issuer: Vec<u8>,
    /// The subject Name's encoding.
    pub subject: Vec<u8>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// The SubjectPublicKeyInfo's encoding.
    pub spki: Vec<u8>,
    /// The extensions, in order.
    pub extensions: Vec<Extension>,
}

fn unexpected(what: &str) -> DerError {
    DerError::Unexpected(what.to_owned())
}

fn read_time(t: &Tlv<'_>) -> Result<i64, DerError> {
    match t.tag {
        tag::UTC_TIME => time::parse_utc(t.value).ok_or_else(|| unexpected("bad UTCTime")),
        tag::GENERALIZED_TIME => time::parse_generalized(t.value)
            .map(|g| g.unix)
            .ok_or_else(|| unexpected("bad GeneralizedTime")),
        _ => Err(unexpected("a validity time that is not a time")),
    }
}

impl Cert {
    /// Parses a DER certificate.
    pub fn from_der(input: &[u8]) -> Result<Self, DerError> {
        let top = der::read_exact(input)?.expect(tag::SEQUENCE, "Certificate")?;
        let parts = top.children()?;
        let [tbs, sig_alg, sig] = parts.as_slice() else {
            return Err(unexpected("Certificate is not a SEQUENCE of three"));
        };
        let sig_alg = AlgId::parse(sig_alg)?;
        let signature = sig
            .expect(tag::BIT_STRING, "signatureValue")?
            .value
            .split_first()
            .filter(|(unused, _)| **unused == 0)
            .map(|(_, s)| s.to_vec())
            .ok_or_else(|| unexpected("signatureValue with unused bits"))?;
        let mut fields = tbs
            .expect(tag::SEQUENCE, "TBSCertificate")?
            .children()?
            .into_iter();
        let mut next = || {
            fields
                .next()
                .ok_or_else(|| unexpected("TBSCertificate too short"))
        };
        let mut f = next()?;
        if f.tag == 0xa0 {
            f = next()?;
        }
        let serial = f.integer()?.to_vec();
        let _inner_sig_alg = next()?;
        let issuer = next()?.expect(tag::SEQUENCE, "issuer")?.raw.to_vec();
        let validity = next()?.expect(tag::SEQUENCE, "validity")?.children()?;
        let [nb, na] = validity.as_slice() else {
            return Err(unexpected("validity is not a SEQUENCE of two"));
        };
        let subject = next()?.expect(tag::SEQUENCE, "subject")?.raw.to_vec();
        let spki = next()?
            .expect(tag::SEQUENCE, "subjectPublicKeyInfo")?
            .raw
            .to_vec();
        let mut extensions = Vec::new();
        for rest in fields {
            if rest.tag != 0xa3 {
                continue;
            }
            let list = der::read_exact(rest.value)?.expect(tag::SEQUENCE, "extensions")?;
            for ext in list.children()? {
                let e = ext.children()?;
                let (oid, critical, value) = match e.as_slice() {
                    [o, v] => (o.oid()?, false, v),
                    [o, c, v] if c.tag == tag::BOOLEAN => (o.oid()?, c.value == [0xff], v),
                    _ => return Err(unexpected("malformed extension")),
                };
                extensions.push(Extension {
                    oid,
                    critical,
                    value: value.expect(tag::OCTET_STRING, "extnValue")?.value.to_vec(),
                });
            }
        }
        Ok(Self {
            der: input.to_vec(),
            tbs: tbs.raw.to_vec(),
            sig_alg,
            signature,
            serial,
            issuer,
            subject,
            not_before: read_time(nb)?,
            not_after: read_time(na)?,
            spki,
            extensions,
        })
    }

    /// Whether `t` (Unix seconds) is within notBefore..=notAfter.
    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// The validity period as the reports print it: notBefore "to" notAfter, each in RFC 3339.
    pub fn validity(&self) -> String {
        format!(
            "{} to {}",
            time::rfc3339(self.not_before),
            time::rfc3339(self.not_after)
        )
    }

    /// Whether this certificate issued `cert`: its subject is `cert`'s issuer and its key
    /// verifies `cert`'s signature.
    pub fn issued(&self, cert: &Cert) -> bool {
        self.subject == cert.issuer
            && crate::crypto::verify(&self.spki, &cert.sig_alg, None, &cert.tbs, &cert.signature)
                .is_ok()
    }

    /// The extensions with `oid`.
    pub fn extensions_named<'a>(&'a self, oid: &'a str) -> impl Iterator<Item = &'a Extension> {
        self.extensions.iter().filter(move |e| e.oid == oid)
    }

    /// Whether basicConstraints says cA TRUE.
    pub fn is_ca(&self) -> bool {
        self.extensions_named(oid::BASIC_CONSTRAINTS).any(|e| {
            der::read_exact(&e.value)
                .and_then(|s| s.children())
                .ok()
                .and_then(|kids| {
                    kids.first()
                        .map(|b| b.tag == tag::BOOLEAN && b.value == [0xff])
                })
                .unwrap_or(false)
        })
    }

    /// The keyUsage bits (bit 0 = digitalSignature), if the extension is present and a
    /// well-formed BIT STRING.
    pub fn key_usage(&self) -> Option<Vec<bool>> {
        let ext = self.extensions_named(oid::KEY_USAGE).next()?;
        let bits = der::read_exact(&ext.value).ok()?;
        let (unused, octets) = bits.value.split_first()?;
        if *unused > 7 || (octets.is_empty() && *unused != 0) {
            return None; // not a BIT STRING (X.690 §8.6.2.2)
        }
        let mut out = Vec::new();
        for (i, byte) in octets.iter().enumerate() {
            let n = if i + 1 == octets.len() {
                8 - usize::from(*unused)
            } else {
                8
            };
            for b in 0..n {
                out.push(byte & (0x80 >> b) != 0);
            }
        }
        Some(out)
    }

    /// The privateKeyUsagePeriod (notBefore, notAfter), each optional.
    pub fn private_key_usage_period(&self) -> Option<(Option<i64>, Option<i64>)> {
        let ext = self.extensions_named(oid::PKUP).next()?;
        let seq = der::read_exact(&ext.value).ok()?;
        let mut period = (None, None);
        for f in seq.children().ok()? {
            let t = time::parse_generalized(f.value).map(|g| g.unix);
            match f.tag {
                0x80 => period.0 = t,
                0x81 => period.1 = t,
                _ => {}
            }
        }
        Some(period)
    }

    /// The subject's attributes: (OID, value as text).
    pub fn subject_attributes(&self) -> Vec<(String, String)> {
        name_attributes(&self.subject)
    }

    /// A one-line description of the subject, e.g. `C=JP, O=…, CN=…`.
    pub fn subject_text(&self) -> String {
        name_text(&self.subject)
    }
}

/// The attributes of a Name's encoding, in order: (OID, value as text).
pub fn name_attributes(name: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(seq) = der::read_exact(name) else {
        return out;
    };
    for rdn in seq.children().unwrap_or_default() {
        for atv in rdn.children().unwrap_or_default() {
            if let Ok(kids) = atv.children()
                && let [o, v] = kids.as_slice()
                && let Ok(o) = o.oid()
            {
                out.push((o, String::from_utf8_lossy(v.value).into_owned()));
            }
        }
    }
    out
}

/// `C=JP, O=…, CN=…` of a Name's encoding.
pub fn name_text(name: &[u8]) -> String {
    name_attributes(name)
        .into_iter()
        .map(|(o, v)| {
            let short = match o.as_str() {
                oid::COUNTRY => "C",
                oid::ORGANIZATION => "O",
                oid::COMMON_NAME => "CN",
                "2.5.4.11" => "OU",
                "2.5.4.97" => "organizationIdentifier",
                _ => o.as_str(),
            };
            format!("{short}={v}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DER of every CERTIFICATE block of a PEM text; DER input is taken as one
/// certificate.
pub fn certificates_from_pem_or_der(input: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    if input.first() == Some(&tag::SEQUENCE) {
        return Ok(vec![input.to_vec()]);
    }
    let text = std::str::from_utf8(input).map_err(|_| "neither PEM nor DER".to_owned())?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b64 = body.take().ok_or("END without BEGIN")?;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("bad base64 in PEM: {e}"))?,
            );
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key_usage(value: &[u8]) -> Cert {
        Cert {
            der: Vec::new(),
            tbs: Vec::new(),
            sig_alg: AlgId {
                oid: String::new(),
                params: None,
            },
            signature: Vec::new(),
            serial: vec![1],
            issuer: Vec::new(),
            subject: Vec::new(),
            not_before: 0,
            not_after: 0,
            spki: Vec::new(),
            extensions: vec![Extension {
                oid: oid::KEY_USAGE.into(),
                critical: true,
                value: value.to_vec(),
            }],
        }
    }

    #[test]
    fn key_usage_bits_and_malformed_bit_strings() {
        // digitalSignature (bit 0) and nonRepudiation (bit 1): 6 unused bits.
        assert_eq!(
            with_key_usage(&[0x03, 0x02, 0x06, 0xc0]).key_usage(),
            Some(vec![true, true])
        );
        // An unused-bits octet above 7, or unused bits with no octet, is no BIT STRING
        // (it once underflowed the bit count).
        assert_eq!(with_key_usage(&[0x03, 0x02, 0x09, 0x80]).key_usage(), None);
        assert_eq!(with_key_usage(&[0x03, 0x01, 0x01]).key_usage(), None);
    }
}
