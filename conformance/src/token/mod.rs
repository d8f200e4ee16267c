//! The checks of one RFC 3161 time-stamp token (RFC 3161 §2.4.2, RFC 5816, ETSI EN 319
//! 422 §5 and §6), each recorded under its requirement id of docs/requirements.md.
//!
//! Every check has its own name, and each defect of the broken corpus
//! (`conformance/tests/corpus.rs`) is meant to fail exactly one of them: a check whose
//! input is missing because an earlier part is broken says SKIP, not FAIL.
//!
//! This file checks the token's structure, its signature and signed attributes and its
//! TSA certificate; `tst_info.rs` the TSTInfo it signs.

use crate::cert::Cert;
use crate::cms::{self, Ctx};
use crate::crypto::{AlgId, Hash};
use crate::der::{self, Tlv, tag};
use crate::report::Findings;
use crate::time::GenTime;

mod tst_info;

use tst_info::tst_info_checks;

/// OIDs of CMS and TSP.
pub mod oid {
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    pub const TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    pub const SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
    pub const SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
    pub const ALGORITHM_PROTECTION: &str = "1.2.840.113549.1.9.52";
    pub const ESI4_QTST_STATEMENT_1: &str = "0.4.0.19422.1.1";
}

/// What the checker knows beyond the token itself. Everything is optional: a check whose
/// expectation is unknown says SKIP.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The imprint asked for: its hash OID and value.
    pub imprint: Option<(String, Vec<u8>)>,
    /// The request's nonce: `Some(None)` when it had none.
    pub nonce: Option<Option<Vec<u8>>>,
    /// The request's certReq.
    pub cert_req: Option<bool>,
    /// The policy the token must carry.
    pub policy: Option<String>,
    /// When the request was sent and the reply received (Unix seconds).
    pub sent_received: Option<(f64, f64)>,
    /// The TSA certificate, for a token that does not carry it.
    pub signer_cert: Option<Vec<u8>>,
    /// Trust anchors the signer must chain to.
    pub ca: Vec<Vec<u8>>,
    /// Intermediate certificates to build the chain with, besides the token's own.
    pub intermediates: Vec<Vec<u8>>,
    /// The EU-qualified profile is claimed (qcStatements expected).
    pub qualified: bool,
}

/// What the `tsa` subcommand keeps of a checked token.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// serialNumber's INTEGER contents.
    pub serial: Option<Vec<u8>>,
    /// The signer certificate, when it was found.
    pub signer_cert: Option<Vec<u8>>,
    /// Every certificate the token carries.
    pub certificates: Vec<Vec<u8>>,
    /// genTime.
    pub gen_time: Option<GenTime>,
}

/// Every check that needs the parsed structure, with its requirement: SKIPped together
/// when the token does not parse.
const STRUCTURAL: &[(&str, &str)] = &[
    ("B.16", "versions"),
    ("B.17", "content-type-attribute"),
    ("B.17", "message-digest"),
    ("B.18", "signed-attributes-sorted"),
    ("B.18", "signature"),
    ("B.19", "digest-algorithm"),
    ("B.20", "algorithm-protection"),
    ("B.21", "signing-certificate"),
    ("B.22", "ess-cert-id"),
    ("B.23", "tstinfo-version-policy"),
    ("B.24", "message-imprint"),
    ("B.25", "serial-number"),
    ("B.26", "gen-time"),
    ("B.26", "gen-time-clock"),
    ("B.27", "accuracy"),
    ("B.28", "ordering-extensions"),
    ("B.29", "tsa-name"),
    ("B.30", "qc-statements"),
    ("A.10", "nonce"),
    ("A.11", "certificates-certreq"),
];

/// The checks of the signer certificate: SKIPped when it is unknown, and with
/// [`STRUCTURAL`] when the token does not parse.
const SIGNER_CERTIFICATE: &[(&str, &str)] = &[
    ("B.31", "tsa-certificate-eku"),
    ("B.31", "tsa-certificate-profile"),
    ("B.31", "tsa-certificate-validity"),
    ("B.31", "certificate-chain"),
    ("B.32", "tsa-certificate-subject"),
    ("B.33", "algorithms"),
];

/// The parts of a token the checks read.
struct Parsed<'a> {
    signed_data_version: u64,
    digest_algorithms: Vec<AlgId>,
    e_content_type: String,
    tst_info: Tlv<'a>,
    certificates: Option<Vec<Tlv<'a>>>,
    signer: cms::SignerInfo<'a>,
}

fn structure(token: &[u8]) -> Result<Parsed<'_>, String> {
    let sd = cms::parse(token)?;
    let octets = sd
        .e_content
        .ok_or("encapContentInfo without eContent (a detached token)")?;
    let tst_info = der::read_exact(octets)
        .and_then(|t| t.expect(tag::SEQUENCE, "TSTInfo"))
        .map_err(|e| format!("TSTInfo: {e}"))?;
    let signers = sd.signers;
    let n = signers.len();
    let [signer] = <[cms::SignerInfo<'_>; 1]>::try_from(signers)
        .map_err(|_| format!("{n} SignerInfos, not exactly one"))?;
    Ok(Parsed {
        signed_data_version: sd.version,
        digest_algorithms: sd.digest_algorithms,
        e_content_type: sd.e_content_type,
        tst_info,
        certificates: sd.certificates,
        signer,
    })
}

/// The status of a TimeStampResp and its token, if any.
#[derive(Debug)]
pub struct Response<'a> {
    /// PKIStatus.
    pub status: u64,
    /// The failInfo bits set.
    pub fail_bits: Vec<usize>,
    /// statusString texts.
    pub status_strings: Vec<String>,
    /// The token's encoding.
    pub token: Option<&'a [u8]>,
}

/// Reads a TimeStampResp (RFC 3161 §2.4.2).
pub fn parse_response(input: &[u8]) -> Result<Response<'_>, String> {
    let top = der::read_exact(input).map_err(|e| format!("TimeStampResp: {e}"))?;
    let kids = top
        .expect(tag::SEQUENCE, "TimeStampResp")
        .and_then(|t| t.children())
        .map_err(|e| e.to_string())?;
    let status_info = kids.first().ok_or("empty TimeStampResp")?;
    let parts = status_info
        .expect(tag::SEQUENCE, "PKIStatusInfo")
        .and_then(|t| t.children())
        .map_err(|e| e.to_string())?;
    let status = parts
        .first()
        .ok_or("empty PKIStatusInfo")?
        .small_uint()
        .map_err(|e| format!("PKIStatus: {e}"))?;
    let mut fail_bits = Vec::new();
    let mut status_strings = Vec::new();
    for p in &parts[1..] {
        match p.tag {
            tag::SEQUENCE => {
                for s in p.children().map_err(|e| e.to_string())? {
                    status_strings.push(String::from_utf8_lossy(s.value).into_owned());
                }
            }
            tag::BIT_STRING => {
                let (_, octets) = p.value.split_first().ok_or("empty failInfo")?;
                for (i, byte) in octets.iter().enumerate() {
                    for b in 0..8 {
                        if byte & (0x80 >> b) != 0 {
                            fail_bits.push(i * 8 + b);
                        }
                    }
                }
            }
            _ => return Err("unexpected element in PKIStatusInfo".into()),
        }
    }
    if kids.len() > 2 {
        return Err("TimeStampResp with more than two elements".into());
    }
    Ok(Response {
        status,
        fail_bits,
        status_strings,
        token: kids.get(1).map(|t| t.raw),
    })
}

/// The fields of a token's TSTInfo, read loosely (no check): what the callers that
/// only need a field (the policy, the imprint's algorithm, the serial) use.
pub fn tst_info_fields(tok: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let ci = der::read_exact(tok).ok()?;
    let sd = der::read_exact(ci.children().ok()?.get(1)?.value).ok()?;
    let encap = sd.children().ok()?.get(2)?.children().ok()?;
    let octets = der::read_exact(encap.get(1)?.value).ok()?;
    der::read_exact(octets.value).ok()?.children().ok()
}

/// The OID of a token's messageImprint hash algorithm.
pub fn imprint_alg(tok: &[u8]) -> Option<String> {
    let fields = tst_info_fields(tok)?;
    let mi = fields.get(2)?.children().ok()?;
    mi.first()?.children().ok()?.first()?.oid().ok()
}

/// A token from a file's bytes: a TimeStampResp (its token) or a bare ContentInfo.
pub fn token_of(input: &[u8]) -> Result<&[u8], String> {
    if let Ok(resp) = parse_response(input) {
        return resp
            .token
            .ok_or_else(|| format!("a TimeStampResp with status {} and no token", resp.status));
    }
    Ok(input)
}

/// Checks `token` (a ContentInfo; [`token_of`] unwraps a TimeStampResp), recording every
/// check in `f`; FAIL details start with `label`.
pub fn check_token(token: &[u8], expect: &Expect, label: &str, f: &mut Findings) -> Facts {
    let mut c = Ctx { f, label };
    let mut facts = Facts::default();
    let p = match structure(token) {
        Ok(p) => p,
        Err(e) => {
            c.fail("B.15", "structure", e);
            for (req, check) in STRUCTURAL.iter().chain(SIGNER_CERTIFICATE) {
                c.skip(req, check, "the token does not parse");
            }
            return facts;
        }
    };
    // B.15: structure and DER order of the certificate SET.
    if p.e_content_type == oid::TST_INFO {
        c.check(
            "B.15",
            "structure",
            Ok("ContentInfo signedData, eContentType id-ct-TSTInfo, one SignerInfo".into()),
        );
    } else {
        c.fail(
            "B.15",
            "structure",
            format!("eContentType {}", p.e_content_type),
        );
    }
    match &p.certificates {
        Some(certs) if !der::is_sorted_set(certs) => c.fail(
            "B.15",
            "certificates-der-set",
            "the certificates SET is not in DER order (X.690 §11.6)",
        ),
        Some(certs) => c.check(
            "B.15",
            "certificates-der-set",
            Ok(format!("{} certificates, in DER order", certs.len())),
        ),
        None => c.check("B.15", "certificates-der-set", Ok("no certificates".into())),
    }

    // B.16 versions.
    let sid_ok = p.signer.sid.tag == tag::SEQUENCE;
    c.check(
        "B.16",
        "versions",
        if p.signed_data_version == 3 && p.signer.version == 1 && sid_ok {
            Ok("SignedData v3, SignerInfo v1 with issuerAndSerialNumber".into())
        } else {
            Err(format!(
                "SignedData v{}, SignerInfo v{}{}",
                p.signed_data_version,
                p.signer.version,
                if sid_ok {
                    ""
                } else {
                    " with subjectKeyIdentifier"
                }
            ))
        },
    );

    // The signer certificate: by issuerAndSerialNumber among the token's certificates,
    // else the one the caller supplied.
    let mut token_certs: Vec<Cert> = Vec::new();
    for t in p.certificates.iter().flatten() {
        if let Ok(cert) = Cert::from_der(t.raw) {
            token_certs.push(cert);
        }
    }
    let sid = sid_ok
        .then(|| p.signer.sid.children().ok())
        .flatten()
        .and_then(|k| match k.as_slice() {
            [issuer, serial] => Some((issuer.raw.to_vec(), serial.value.to_vec())),
            _ => None,
        });
    let matches_sid = |cert: &Cert| {
        sid.as_ref()
            .is_some_and(|(i, s)| &cert.issuer == i && &cert.serial == s)
    };
    let signer: Option<Cert> = token_certs
        .iter()
        .find(|c| matches_sid(c))
        .cloned()
        .or_else(|| {
            expect
                .signer_cert
                .as_deref()
                .and_then(|d| Cert::from_der(d).ok())
                .filter(&matches_sid)
        });
    facts.signer_cert = signer.as_ref().map(|s| s.der.clone());
    facts.certificates = token_certs.iter().map(|c| c.der.clone()).collect();

    // B.19 digest algorithm.
    let digest_hash = Hash::from_oid(&p.signer.digest_alg.oid);
    c.check(
        "B.19",
        "digest-algorithm",
        match &digest_hash {
            Err(e) => Err(format!("SignerInfo digestAlgorithm: {e}")),
            Ok(_) if !p.signer.digest_alg.params_absent_or_null() => {
                Err("digestAlgorithm parameters neither absent nor NULL".into())
            }
            Ok(h) if !p.digest_algorithms.iter().any(|a| a.oid == h.oid()) => Err(format!(
                "{} is not in SignedData.digestAlgorithms",
                h.name()
            )),
            Ok(h) => Ok(format!("{} for the content and the attributes", h.name())),
        },
    );

    // Signed attributes.
    let attrs = match p.signer.signed_attrs.as_ref().map(cms::attributes) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            c.fail(
                "B.17",
                "content-type-attribute",
                format!("signed attributes: {e}"),
            );
            None
        }
        None => {
            c.fail("B.17", "content-type-attribute", "no signed attributes");
            None
        }
    };
    let attr_values = |o: &str| -> Vec<Vec<Tlv<'_>>> {
        attrs
            .iter()
            .flatten()
            .filter(|(oid, _)| oid == o)
            .map(|(_, v)| v.clone())
            .collect()
    };
    if let Some(_attrs) = &attrs {
        let ct = attr_values(oid::CONTENT_TYPE);
        c.check(
            "B.17",
            "content-type-attribute",
            match ct.as_slice() {
                [vals]
                    if vals.len() == 1 && vals[0].oid().ok().as_deref() == Some(oid::TST_INFO) =>
                {
                    Ok("one content-type, id-ct-TSTInfo".into())
                }
                [vals] => Err(format!(
                    "content-type {} does not equal eContentType id-ct-TSTInfo",
                    vals.first()
                        .and_then(|v| v.oid().ok())
                        .unwrap_or_else(|| "malformed".into())
                )),
                other => Err(format!("{} content-type attributes", other.len())),
            },
        );
        let md = attr_values(oid::MESSAGE_DIGEST);
        c.judge(
            "B.17",
            "message-digest",
            cms::message_digest(
                &md,
                digest_hash.as_ref().ok().copied(),
                Some(p.tst_info.raw),
                "the TSTInfo",
            ),
        );
    } else {
        c.skip("B.17", "message-digest", "no signed attributes");
    }

    // B.18: DER order, and the signature over the SET OF encoding.
    c.judge(
        "B.18",
        "signed-attributes-sorted",
        cms::signed_attributes_sorted(&p.signer),
    );
    c.judge(
        "B.18",
        "signature",
        cms::signature_over_attributes(
            &p.signer,
            signer.as_ref(),
            digest_hash.as_ref().ok().copied(),
            "the signer certificate is neither in the token nor supplied",
        ),
    );

    // B.20 CMS algorithm protection.
    let ap = attr_values(oid::ALGORITHM_PROTECTION);
    if attrs.is_none() {
        c.skip("B.20", "algorithm-protection", "no signed attributes");
    } else {
        c.check(
            "B.20",
            "algorithm-protection",
            match ap.as_slice() {
                [] => Err("no cms-algorithm-protection attribute (RFC 6211; SHOULD)".into()),
                [vals] if vals.len() == 1 => {
                    cms::algorithm_protection(&vals[0], &p.signer.digest_alg, &p.signer.sig_alg)
                }
                _ => Err("more than one cms-algorithm-protection".into()),
            },
        );
    }

    // B.21/B.22 signing-certificate(-v2).
    let v2 = attr_values(oid::SIGNING_CERTIFICATE_V2);
    let v1 = attr_values(oid::SIGNING_CERTIFICATE);
    if attrs.is_none() {
        c.skip("B.21", "signing-certificate", "no signed attributes");
        c.skip("B.22", "ess-cert-id", "no signed attributes");
    } else {
        match (v2.as_slice(), v1.as_slice()) {
            ([vals], []) if vals.len() == 1 => {
                c.check(
                    "B.21",
                    "signing-certificate",
                    Ok("one signing-certificate-v2 (RFC 5816)".into()),
                );
                match &signer {
                    Some(cert) => c.check("B.22", "ess-cert-id", ess_cert_id_v2(&vals[0], cert)),
                    None => c.skip("B.22", "ess-cert-id", "the signer certificate is unknown"),
                }
            }
            ([], []) => {
                c.fail(
                    "B.21",
                    "signing-certificate",
                    "neither signing-certificate-v2 nor signing-certificate",
                );
                c.skip("B.22", "ess-cert-id", "no ESSCertIDv2 to check");
            }
            ([], [_]) => {
                c.fail(
                    "B.21",
                    "signing-certificate",
                    "only signing-certificate (ESSCertID, SHA-1); EN 319 422 asks for v2",
                );
                c.skip("B.22", "ess-cert-id", "no ESSCertIDv2 to check");
            }
            _ => {
                c.fail(
                    "B.21",
                    "signing-certificate",
                    "more than one signing-certificate attribute",
                );
                c.skip("B.22", "ess-cert-id", "ambiguous");
            }
        }
    }

    tst_info_checks(&mut c, &p.tst_info, expect, signer.as_ref(), &mut facts);

    // A.11 certificates iff certReq.
    match expect.cert_req {
        Some(true) => c.check(
            "A.11",
            "certificates-certreq",
            if signer.is_some() && token_certs.iter().any(matches_sid) {
                Ok("certReq: the TSA certificate is included".into())
            } else {
                Err("certReq was true but the TSA certificate is not in the token".into())
            },
        ),
        Some(false) => c.check(
            "A.11",
            "certificates-certreq",
            if p.certificates.is_none() {
                Ok("no certReq: no certificates".into())
            } else {
                Err("certificates present although certReq was absent or false".into())
            },
        ),
        None => c.skip("A.11", "certificates-certreq", "the request is unknown"),
    }

    // B.31–B.33: the TSA certificate.
    let gen_time = facts.gen_time.as_ref().map(|g| g.unix);
    match &signer {
        Some(cert) => {
            crate::tsa_cert::certificate_checks(&mut c, cert, gen_time, expect, &token_certs);
            c.check(
                "B.33",
                "algorithms",
                cms::algorithms(cert, &p.signer.sig_alg, digest_hash.as_ref().ok().copied()),
            );
        }
        None => {
            for (req, check) in SIGNER_CERTIFICATE {
                c.skip(req, check, "the signer certificate is unknown");
            }
        }
    }
    facts
}

fn ess_cert_id_v2(v: &Tlv<'_>, cert: &Cert) -> Result<String, String> {
    let id = cms::ess_cert_id_v2(v, cert)?;
    Ok(if id.issuer_serial {
        format!(
            "{} certHash and issuerSerial name the signer certificate",
            id.hash.name()
        )
    } else {
        format!("{} certHash names the signer certificate", id.hash.name())
    })
}
