//! CMS SignedData (RFC 5652 §5) as the checks read it, shared by the time-stamp token
//! checks ([`crate::token`]) and the e-seal checks ([`crate::cades`], [`crate::pades`]):
//! the parsed structure, the signed attributes, the ESS signing certificate (RFC 5035),
//! CMS algorithm protection (RFC 6211) and the path to a trust anchor.

use crate::cert::{self, Cert};
use crate::crypto::{self, AlgId, Hash};
use crate::der::{self, Tlv, tag};
use crate::report::{Findings, Outcome};
use crate::time;

/// OIDs of CMS content types and attributes.
pub mod oid {
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    pub const SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
    pub const SIGNATURE_TIME_STAMP: &str = "1.2.840.113549.1.9.16.2.14";
    pub const COMMITMENT_TYPE: &str = "1.2.840.113549.1.9.16.2.16";
    pub const SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
    pub const ALGORITHM_PROTECTION: &str = "1.2.840.113549.1.9.52";
}

/// The findings of one artefact under a label (e.g. `signature-time-stamp 1`), which
/// prefixes every FAIL detail.
pub(crate) struct Ctx<'a> {
    pub(crate) f: &'a mut Findings,
    pub(crate) label: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn check(
        &mut self,
        req: &'static str,
        check: &'static str,
        r: Result<String, String>,
    ) {
        match r {
            Ok(d) => self.f.add(req, check, Outcome::Pass, d),
            Err(d) => self.fail(req, check, d),
        }
    }

    pub(crate) fn fail(
        &mut self,
        req: &'static str,
        check: &'static str,
        d: impl std::fmt::Display,
    ) {
        let d = if self.label.is_empty() {
            d.to_string()
        } else {
            format!("{}: {d}", self.label)
        };
        self.f.add(req, check, Outcome::Fail, d);
    }

    pub(crate) fn skip(&mut self, req: &'static str, check: &'static str, why: &str) {
        self.f.add(req, check, Outcome::Skip, why);
    }

    /// Records a [`Judged`] outcome: PASS, FAIL, or SKIP with the reason.
    pub(crate) fn judge(&mut self, req: &'static str, check: &'static str, j: Judged) {
        match j {
            Ok(r) => self.check(req, check, r),
            Err(why) => self.skip(req, check, why),
        }
    }
}

/// A check's outcome where there may be nothing to check: `Err(why)` is a SKIP.
pub(crate) type Judged = Result<Result<String, String>, &'static str>;

/// Whether the message-digest attributes `md` (each attribute's values) are one OCTET
/// STRING equal to the hash of `content` (named `what` in the report); `None` content
/// is a SKIP.
pub(crate) fn message_digest(
    md: &[Vec<Tlv<'_>>],
    digest: Option<Hash>,
    content: Option<&[u8]>,
    what: &str,
) -> Judged {
    let vals = match md {
        [vals] => vals,
        other => return Ok(Err(format!("{} message-digest attributes", other.len()))),
    };
    let [v] = vals.as_slice() else {
        return Ok(Err(
            "the message-digest attribute is not one OCTET STRING".into()
        ));
    };
    if v.tag != tag::OCTET_STRING {
        return Ok(Err(
            "the message-digest attribute is not one OCTET STRING".into()
        ));
    }
    let h = digest.ok_or("digest algorithm unusable")?;
    let want = h.digest(content.ok_or("the signed bytes are unknown")?);
    Ok(if v.value == want.as_slice() {
        Ok(format!("{} of {what}", h.name()))
    } else {
        Err(format!(
            "message-digest {} is not the {} of {what} ({})",
            hex::encode(v.value),
            h.name(),
            hex::encode(&want)
        ))
    })
}

/// Whether the signed attributes are in DER SET OF order (X.690 §11.6).
pub(crate) fn signed_attributes_sorted(si: &SignerInfo<'_>) -> Judged {
    let sa = si.signed_attrs.as_ref().ok_or("no signed attributes")?;
    Ok(match sa.children() {
        Ok(elements) if der::is_sorted_set(&elements) => {
            Ok(format!("{} attributes in DER order", elements.len()))
        }
        Ok(_) => Err("the signed attributes are not in DER SET OF order (X.690 §11.6)".into()),
        Err(e) => Err(e.to_string()),
    })
}

/// Whether the signature verifies over the signed attributes re-tagged as SET OF
/// (RFC 5652 §5.4) with `signer`'s key; `unknown_signer` says why when there is none.
pub(crate) fn signature_over_attributes(
    si: &SignerInfo<'_>,
    signer: Option<&Cert>,
    digest: Option<Hash>,
    unknown_signer: &'static str,
) -> Judged {
    let sa = si.signed_attrs.as_ref().ok_or("no signed attributes")?;
    let cert = signer.ok_or(unknown_signer)?;
    let mut message = sa.raw.to_vec();
    message[0] = tag::SET;
    Ok(
        crypto::verify(&cert.spki, &si.sig_alg, digest, &message, si.signature)
            .map(|()| "valid over the signed attributes' SET OF encoding".into()),
    )
}

/// A SignedData as received.
#[derive(Clone, Debug)]
pub struct SignedData<'a> {
    /// CMSVersion.
    pub version: u64,
    /// digestAlgorithms.
    pub digest_algorithms: Vec<AlgId>,
    /// encapContentInfo.eContentType.
    pub e_content_type: String,
    /// The eContent OCTET STRING's contents; `None` when detached.
    pub e_content: Option<&'a [u8]>,
    /// The `[0]` certificates, each CertificateChoices as received.
    pub certificates: Option<Vec<Tlv<'a>>>,
    /// Whether `[1]` crls is present.
    pub crls: bool,
    /// The SignerInfos, in order.
    pub signers: Vec<SignerInfo<'a>>,
}

/// One SignerInfo as received.
#[derive(Clone, Debug)]
pub struct SignerInfo<'a> {
    /// CMSVersion.
    pub version: u64,
    /// sid: issuerAndSerialNumber (a SEQUENCE) or `[0]` subjectKeyIdentifier.
    pub sid: Tlv<'a>,
    /// digestAlgorithm.
    pub digest_alg: AlgId,
    /// The `[0] IMPLICIT` signed attributes as received.
    pub signed_attrs: Option<Tlv<'a>>,
    /// signatureAlgorithm.
    pub sig_alg: AlgId,
    /// The signature value.
    pub signature: &'a [u8],
    /// The `[1] IMPLICIT` unsigned attributes as received.
    pub unsigned_attrs: Option<Tlv<'a>>,
}

impl SignerInfo<'_> {
    /// The issuer Name's encoding and the serial's INTEGER contents of an
    /// issuerAndSerialNumber sid.
    pub fn issuer_and_serial(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        if self.sid.tag != tag::SEQUENCE {
            return None;
        }
        match self.sid.children().ok()?.as_slice() {
            [issuer, serial] => Some((issuer.raw.to_vec(), serial.value.to_vec())),
            _ => None,
        }
    }

    /// Whether `cert` is the one the sid names.
    pub fn names(&self, cert: &Cert) -> bool {
        self.issuer_and_serial()
            .is_some_and(|(i, s)| cert.issuer == i && cert.serial == s)
    }
}

/// Reads a ContentInfo holding a SignedData (DER, nothing after it).
pub fn parse(input: &[u8]) -> Result<SignedData<'_>, String> {
    let ci = der::read_exact(input).map_err(|e| format!("ContentInfo: {e}"))?;
    let ci = ci
        .expect(tag::SEQUENCE, "ContentInfo")
        .map_err(|e| e.to_string())?;
    let kids = ci.children().map_err(|e| format!("ContentInfo: {e}"))?;
    let [ct, content] = kids.as_slice() else {
        return Err("ContentInfo is not a SEQUENCE of two".into());
    };
    let ct = ct.oid().map_err(|e| e.to_string())?;
    if ct != oid::SIGNED_DATA {
        return Err(format!("contentType {ct}, not signedData"));
    }
    if content.tag != 0xa0 {
        return Err("ContentInfo content not [0] EXPLICIT".into());
    }
    let sd = der::read_exact(content.value)
        .and_then(|t| t.expect(tag::SEQUENCE, "SignedData"))
        .map_err(|e| format!("SignedData: {e}"))?;
    let fields = sd.children().map_err(|e| format!("SignedData: {e}"))?;
    let mut it = fields.iter().copied();
    let mut next = |what: &str| it.next().ok_or(format!("SignedData ends before {what}"));
    let version = next("version")?.small_uint().map_err(|e| e.to_string())?;
    let digest_algorithms = next("digestAlgorithms")?
        .expect(tag::SET, "digestAlgorithms")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?
        .iter()
        .map(AlgId::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let encap = next("encapContentInfo")?
        .expect(tag::SEQUENCE, "encapContentInfo")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    let (e_content_type, e_content) = match encap.as_slice() {
        [ect] => (ect.oid().map_err(|e| e.to_string())?, None),
        [ect, econtent] => {
            if econtent.tag != 0xa0 {
                return Err("eContent not [0] EXPLICIT".into());
            }
            let octets = der::read_exact(econtent.value)
                .and_then(|t| t.expect(tag::OCTET_STRING, "eContent"))
                .map_err(|e| format!("eContent: {e}"))?;
            (ect.oid().map_err(|e| e.to_string())?, Some(octets.value))
        }
        _ => return Err("encapContentInfo is not a SEQUENCE of one or two".into()),
    };
    let mut certificates = None;
    let mut crls = false;
    let mut f = next("signerInfos")?;
    if f.tag == 0xa0 {
        certificates = Some(f.children().map_err(|e| format!("certificates: {e}"))?);
        f = next("signerInfos")?;
    }
    if f.tag == 0xa1 {
        crls = true;
        f = next("signerInfos")?;
    }
    let infos = f
        .expect(tag::SET, "signerInfos")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    if let Some(extra) = it.next() {
        return Err(format!(
            "SignedData has an element (tag 0x{:02x}) after signerInfos",
            extra.tag
        ));
    }
    let signers = infos
        .iter()
        .map(signer_info)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SignedData {
        version,
        digest_algorithms,
        e_content_type,
        e_content,
        certificates,
        crls,
        signers,
    })
}

fn signer_info<'a>(si: &Tlv<'a>) -> Result<SignerInfo<'a>, String> {
    let s = si
        .expect(tag::SEQUENCE, "SignerInfo")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    let mut it = s.iter().copied();
    let mut next = |what: &str| it.next().ok_or(format!("SignerInfo ends before {what}"));
    let version = next("version")?.small_uint().map_err(|e| e.to_string())?;
    let sid = next("sid")?;
    let digest_alg = AlgId::parse(&next("digestAlgorithm")?).map_err(|e| e.to_string())?;
    let mut f = next("signatureAlgorithm")?;
    let mut signed_attrs = None;
    if f.tag == 0xa0 {
        signed_attrs = Some(f);
        f = next("signatureAlgorithm")?;
    }
    let sig_alg = AlgId::parse(&f).map_err(|e| e.to_string())?;
    let signature = next("signature")?
        .expect(tag::OCTET_STRING, "signature")
        .map_err(|e| e.to_string())?
        .value;
    let unsigned_attrs = match it.next() {
        None => None,
        Some(u) if u.tag == 0xa1 => Some(u),
        Some(u) => {
            return Err(format!(
                "SignerInfo element with tag 0x{:02x} after the signature",
                u.tag
            ));
        }
    };
    if it.next().is_some() {
        return Err("SignerInfo has elements after unsignedAttrs".into());
    }
    Ok(SignerInfo {
        version,
        sid,
        digest_alg,
        signed_attrs,
        sig_alg,
        signature,
        unsigned_attrs,
    })
}

/// The attributes of a signed or unsigned attributes value: (OID, values).
pub fn attributes<'a>(attrs: &Tlv<'a>) -> Result<Vec<(String, Vec<Tlv<'a>>)>, String> {
    let mut out = Vec::new();
    for a in attrs.children().map_err(|e| e.to_string())? {
        let kids = a.children().map_err(|e| e.to_string())?;
        let [o, vals] = kids.as_slice() else {
            return Err("an Attribute that is not a SEQUENCE of two".into());
        };
        let values = vals
            .expect(tag::SET, "attrValues")
            .and_then(|s| s.children())
            .map_err(|e| e.to_string())?;
        out.push((o.oid().map_err(|e| e.to_string())?, values));
    }
    Ok(out)
}

/// RFC 6211: the CMSAlgorithmProtection value names the SignerInfo's algorithms.
pub fn algorithm_protection(v: &Tlv<'_>, digest: &AlgId, sig: &AlgId) -> Result<String, String> {
    let kids = v.children().map_err(|e| e.to_string())?;
    let d = AlgId::parse(kids.first().ok_or("empty CMSAlgorithmProtection")?)
        .map_err(|e| e.to_string())?;
    let s = kids
        .iter()
        .find(|k| k.tag == 0xa1)
        .map(|k| {
            let mut as_seq = k.raw.to_vec();
            as_seq[0] = tag::SEQUENCE;
            der::read_exact(&as_seq)
                .map_err(|e| e.to_string())
                .and_then(|t| AlgId::parse(&t).map_err(|e| e.to_string()))
        })
        .transpose()?
        .ok_or("CMSAlgorithmProtection without signatureAlgorithm")?;
    let same = |a: &AlgId, b: &AlgId| {
        a.oid == b.oid
            && (a.params == b.params || (a.params_absent_or_null() && b.params_absent_or_null()))
    };
    if !same(&d, digest) {
        return Err(format!(
            "protects digest {} but the SignerInfo uses {}",
            d.oid, digest.oid
        ));
    }
    if !same(&s, sig) {
        return Err(format!(
            "protects signature {} but the SignerInfo uses {}",
            s.oid, sig.oid
        ));
    }
    Ok("present and equal to the SignerInfo's algorithms".into())
}

/// What the first ESSCertIDv2 of a SigningCertificateV2 says.
#[derive(Clone, Copy, Debug)]
pub struct EssCertIdV2 {
    /// Its hash algorithm (SHA-256 when absent, the DEFAULT).
    pub hash: Hash,
    /// Whether it carries issuerSerial (checked to name the certificate).
    pub issuer_serial: bool,
}

/// Checks that the first ESSCertIDv2 of the SigningCertificateV2 `v` names `cert`: its
/// certHash, and its issuerSerial when present. An explicit SHA-256 hashAlgorithm is a
/// DER defect (it is the DEFAULT).
pub fn ess_cert_id_v2(v: &Tlv<'_>, cert: &Cert) -> Result<EssCertIdV2, String> {
    let seq = v.children().map_err(|e| e.to_string())?;
    let ids = seq
        .first()
        .ok_or("empty SigningCertificateV2")?
        .children()
        .map_err(|e| e.to_string())?;
    let first = ids
        .first()
        .ok_or("SigningCertificateV2 lists no certificate")?;
    let parts = first.children().map_err(|e| e.to_string())?;
    let (hash, rest) = match parts.first() {
        Some(t) if t.tag == tag::SEQUENCE => {
            let alg = AlgId::parse(t).map_err(|e| e.to_string())?;
            if alg.oid == crypto::oid::SHA256 {
                return Err(
                    "hashAlgorithm SHA-256 written out: it is the DEFAULT, which DER omits".into(),
                );
            }
            (Hash::from_oid(&alg.oid)?, &parts[1..])
        }
        _ => (Hash::Sha256, &parts[..]),
    };
    let cert_hash = rest.first().ok_or("ESSCertIDv2 without certHash")?;
    if cert_hash.value != hash.digest(&cert.der).as_slice() {
        return Err(format!(
            "the first ESSCertIDv2's certHash ({}) is not the {} of the signer certificate",
            hex::encode(cert_hash.value),
            hash.name()
        ));
    }
    if let Some(is) = rest.get(1) {
        let k = is.children().map_err(|e| e.to_string())?;
        let [names, serial] = k.as_slice() else {
            return Err("malformed issuerSerial".into());
        };
        let dir = names
            .children()
            .ok()
            .and_then(|n| n.into_iter().find(|g| g.tag == 0xa4))
            .ok_or("issuerSerial without a directoryName")?;
        if dir.value != cert.issuer.as_slice() || serial.value != cert.serial.as_slice() {
            return Err("issuerSerial does not name the signer certificate".into());
        }
        return Ok(EssCertIdV2 {
            hash,
            issuer_serial: true,
        });
    }
    Ok(EssCertIdV2 {
        hash,
        issuer_serial: false,
    })
}

/// A path from `leaf` to one of `anchors`, through `pool` and the anchors, each
/// signature verified and each CA certificate valid at `at` (described as `at_what`).
pub fn chain(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    at: Option<i64>,
    at_what: &str,
) -> Result<String, String> {
    let mut current = leaf.clone();
    let mut path = vec![current.subject_text()];
    for _ in 0..8 {
        if anchors.iter().any(|a| a.der == current.der) {
            return Ok(format!("chains to the anchor: {}", path.join(" ← ")));
        }
        let issuer = anchors
            .iter()
            .chain(pool)
            .find(|c| c.issued(&current))
            .ok_or_else(|| {
                format!(
                    "no certificate of issuer {} verifies {}",
                    cert::name_text(&current.issuer),
                    current.subject_text()
                )
            })?;
        if !issuer.is_ca() {
            return Err(format!("issuer {} is not a CA", issuer.subject_text()));
        }
        if let Some(t) = at
            && !issuer.valid_at(t)
        {
            return Err(format!(
                "CA {} not valid at {at_what} {}",
                issuer.subject_text(),
                time::rfc3339(t)
            ));
        }
        path.push(issuer.subject_text());
        if anchors.iter().any(|a| a.der == issuer.der) {
            return Ok(format!("chains to the anchor: {}", path.join(" ← ")));
        }
        current = issuer.clone();
    }
    Err("no path to a trust anchor within 8 certificates".into())
}

/// The key and the signature's hash per ETSI TS 119 312: RSA of at least 3072 bits, or
/// an EC or EdDSA key; a SHA-2 digest of at least 256 bits.
pub fn algorithms(cert: &Cert, sig_alg: &AlgId, digest: Option<Hash>) -> Result<String, String> {
    let kind = crypto::key_kind(&cert.spki)?;
    if let crypto::KeyKind::Rsa(bits) = kind
        && bits < 3072
    {
        return Err(format!("RSA-{bits}: below 3072 bits (ETSI TS 119 312)"));
    }
    let digest = digest.ok_or("the digest algorithm is not one of TS 119 312")?;
    Ok(format!(
        "{kind}, {} with {}",
        digest.name(),
        crypto::signature_algorithm_name(&sig_alg.oid)
    ))
}
