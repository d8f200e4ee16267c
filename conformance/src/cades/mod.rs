//! The checks of a CAdES signature, detached or enveloping (a DER CMS SignedData), against ETSI EN 319
//! 122-1 baselines B-B and B-T, as requirements D.45 to D.48 of docs/requirements.md
//! state them; [`crate::pades`] runs the same checks on the CMS of each PDF signature.
//!
//! As for tokens, each check has its own name and each defect is meant to fail exactly
//! one of them: a check whose input is missing because an earlier part is broken says
//! SKIP. The check names are prefixed `cades-` so that they never merge with the checks
//! of the signature-time-stamp token ([`crate::token::check_token`]), which are recorded
//! in the same report under their own (B.x) names and a label.
//!
//! This file checks the structure, the signer, the signature, the chain and the
//! algorithms; `attributes.rs` the signed attributes, `time_stamps.rs` the
//! signature-time-stamps.

use crate::cert::Cert;
use crate::cms::{self, Ctx, SignerInfo, oid};
use crate::crypto::{AlgId, Hash};
use crate::der::{self, tag};
use crate::report::Findings;
use crate::time;

mod attributes;
mod time_stamps;

use time_stamps::time_stamps;

/// MD5 and md5WithRSAEncryption as OBJECT IDENTIFIER TLVs (D.47: no MD5 anywhere).
const MD5_OIDS: &[(&str, &[u8])] = &[
    (
        "MD5",
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05],
    ),
    (
        "md5WithRSAEncryption",
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04,
        ],
    ),
];

/// Which baseline the CMS is checked against: a CAdES detached signature, or the CMS
/// of a PAdES signature dictionary (no signing-time, content-type id-data; /M is the
/// claimed signing time).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Profile {
    /// EN 319 122-1.
    Cades,
    /// EN 319 142-1, with the signature dictionary's /M (Unix seconds) if it parsed.
    Pades {
        /// /M.
        m: Option<i64>,
    },
}

/// The (requirement, check) pairs whose meaning depends on the profile.
struct Names {
    content_type: (&'static str, &'static str),
    signing_time: (&'static str, &'static str),
    signing_cert: (&'static str, &'static str),
}

impl Profile {
    fn names(self) -> Names {
        match self {
            Self::Cades => Names {
                content_type: ("D.45", "cades-content-type"),
                signing_time: ("D.45", "cades-signing-time"),
                signing_cert: ("D.45", "cades-signing-certificate-v2"),
            },
            Self::Pades { .. } => Names {
                content_type: ("E.57", "pades-content-type"),
                signing_time: ("E.56", "pades-no-signing-time"),
                signing_cert: ("E.57", "pades-signing-certificate-v2"),
            },
        }
    }

    /// Every check after the structure, with its requirement: SKIPped together when the
    /// CMS does not parse.
    fn structural(self) -> Vec<(&'static str, &'static str)> {
        let n = self.names();
        vec![
            n.content_type,
            ("D.45", "cades-message-digest"),
            ("D.45", "cades-signed-attributes-sorted"),
            ("D.45", "cades-signature"),
            n.signing_time,
            n.signing_cert,
            ("D.45", "cades-signer-certificate"),
            ("D.45", "cades-signer-validity"),
            ("D.46", "cades-ess-cert-id"),
            ("D.46", "cades-chain-included"),
            ("D.46", "cades-signer-chain"),
            ("D.47", "cades-no-md5"),
            ("D.47", "cades-algorithm-protection"),
            ("D.47", "cades-algorithms"),
            ("D.48", "cades-level"),
            ("D.48", "cades-time-stamp-in-validity"),
        ]
    }
}

/// What the PAdES checks need to know of a checked CMS.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Facts {
    /// The CMS parsed as a SignedData with one SignerInfo.
    pub(crate) parsed: bool,
    /// The number of signature-time-stamp tokens (0: B-B).
    pub(crate) time_stamps: usize,
    /// A commitment-type-indication signed attribute is present.
    pub(crate) commitment_type: bool,
}

/// Checks the detached CAdES signature `p7s` (DER ContentInfo) over `data`, its signer
/// chained to the DER trust anchors `ca` (none: the chain check says SKIP).
pub fn check(p7s: &[u8], data: &[u8], ca: &[Vec<u8>], f: &mut Findings) {
    check_signature(p7s, Some(data), ca, f);
}

/// Checks a CAdES signature, detached or enveloping: the signed bytes are its eContent
/// when it carries one (`data`, when also given, must be those bytes), else `data`
/// (`None`: the message-digest check says SKIP).
pub fn check_signature(p7s: &[u8], data: Option<&[u8]>, ca: &[Vec<u8>], f: &mut Findings) {
    let mut c = Ctx { f, label: "" };
    check_cms(&mut c, p7s, data, ca, Profile::Cades);
}

/// SKIPs every CAdES check, the structure's too: there is no CMS to check (`why`).
pub(crate) fn skip_all(c: &mut Ctx<'_>, profile: Profile, why: &str) {
    c.skip("D.45", "cades-structure", why);
    for (req, check) in profile.structural() {
        c.skip(req, check, why);
    }
}

/// The structure: ContentInfo signedData, one SignerInfo, the versions of RFC 5652 §5.1
/// and §5.3; detached for PAdES (ISO 32000-2 §12.8.3.4), detached or enveloping for CAdES.
fn structure(input: &[u8], profile: Profile) -> Result<(cms::SignedData<'_>, String), String> {
    let sd = cms::parse(input)?;
    if sd.e_content.is_some() && matches!(profile, Profile::Pades { .. }) {
        return Err(
            "the content is encapsulated (eContent present): not a detached signature".into(),
        );
    }
    let [si] = sd.signers.as_slice() else {
        return Err(format!("{} SignerInfos, not exactly one", sd.signers.len()));
    };
    let by_ski = si.sid.tag == 0x80;
    if !by_ski && si.sid.tag != tag::SEQUENCE {
        return Err(format!("SignerInfo sid with tag 0x{:02x}", si.sid.tag));
    }
    let want_si = if by_ski { 3 } else { 1 };
    if si.version != want_si {
        return Err(format!(
            "SignerInfo v{} with {} (RFC 5652 §5.3: v{want_si})",
            si.version,
            if by_ski {
                "subjectKeyIdentifier"
            } else {
                "issuerAndSerialNumber"
            }
        ));
    }
    // RFC 5652 §5.1: v1 unless the content type is not id-data or a SignerInfo is v3
    // (other certificate or CRL formats, which would ask for v4 or v5, are not checked).
    let want_sd = if by_ski || sd.e_content_type != oid::DATA {
        3
    } else {
        1
    };
    if sd.version != want_sd {
        return Err(format!(
            "SignedData v{} where RFC 5652 §5.1 gives v{want_sd}",
            sd.version
        ));
    }
    let detail = format!(
        "ContentInfo signedData v{}, {}, eContentType {}, one SignerInfo v{}",
        sd.version,
        if sd.e_content.is_some() {
            "enveloping"
        } else {
            "detached"
        },
        if sd.e_content_type == oid::DATA {
            "id-data"
        } else {
            sd.e_content_type.as_str()
        },
        si.version
    );
    Ok((sd, detail))
}

/// The certificate the sid names, among `certs`.
fn find_signer(si: &SignerInfo<'_>, certs: &[Cert]) -> Option<Cert> {
    if si.sid.tag == 0x80 {
        return certs
            .iter()
            .find(|c| {
                c.extensions_named(crate::cert::oid::SKI)
                    .any(|e| der::read_exact(&e.value).is_ok_and(|k| k.value == si.sid.value))
            })
            .cloned();
    }
    certs.iter().find(|c| si.names(c)).cloned()
}

/// Runs every check of the CMS `input` over `data` (`None`: the signed bytes are unknown,
/// the message-digest check says SKIP), recording them in `c`.
pub(crate) fn check_cms(
    c: &mut Ctx<'_>,
    input: &[u8],
    data: Option<&[u8]>,
    ca: &[Vec<u8>],
    profile: Profile,
) -> Facts {
    let mut facts = Facts::default();
    let names = profile.names();
    let (sd, detail) = match structure(input, profile) {
        Ok(p) => p,
        Err(e) => {
            c.fail("D.45", "cades-structure", e);
            for (req, check) in profile.structural() {
                c.skip(req, check, "the signature does not parse");
            }
            return facts;
        }
    };
    facts.parsed = true;
    c.check("D.45", "cades-structure", Ok(detail));
    // An enveloping signature signs its eContent; detached data given beside it must be
    // the same bytes, or the report would be about another document.
    let data = match (sd.e_content, data) {
        (Some(inside), Some(given)) if inside != given => {
            c.fail(
                "D.45",
                "cades-message-digest",
                "the encapsulated content is not the data given (--data)",
            );
            None
        }
        (Some(inside), _) => Some(inside),
        (None, given) => given,
    };
    let Some(si) = sd.signers.first() else {
        return facts;
    };

    // The certificates and the signer's among them.
    let mut certs: Vec<Cert> = Vec::new();
    let mut unparsed = Vec::new();
    for (i, t) in sd.certificates.iter().flatten().enumerate() {
        match Cert::from_der(t.raw) {
            Ok(cert) => certs.push(cert),
            Err(e) => unparsed.push(format!("certificate {}: {e}", i + 1)),
        }
    }
    let signer = find_signer(si, &certs);
    c.check(
        "D.45",
        "cades-signer-certificate",
        match &signer {
            Some(s) => Ok(format!("in SignedData.certificates: {}", s.subject_text())),
            None => Err(if sd.certificates.is_none() {
                "SignedData carries no certificates".into()
            } else {
                "the certificate the sid names is not in SignedData.certificates".into()
            }),
        },
    );

    let digest_hash = Hash::from_oid(&si.digest_alg.oid);

    // Signed attributes.
    let attrs = match si.signed_attrs.as_ref().map(cms::attributes) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            c.fail(
                names.content_type.0,
                names.content_type.1,
                format!("signed attributes: {e}"),
            );
            None
        }
        None => {
            c.fail(
                names.content_type.0,
                names.content_type.1,
                "no signed attributes",
            );
            None
        }
    };
    let attr_values = |o: &str| attributes::values(attrs.as_deref().unwrap_or_default(), o);
    facts.commitment_type = !attr_values(oid::COMMITMENT_TYPE).is_empty();
    let mut signing_time: Option<i64> = match profile {
        Profile::Pades { m } => m,
        Profile::Cades => None,
    };
    if let Some(attrs) = &attrs {
        if let Some(t) = attributes::signed_attributes(
            c,
            attrs,
            &names,
            profile,
            &sd.e_content_type,
            digest_hash.as_ref().ok().copied(),
            data,
            signer.as_ref(),
        ) {
            signing_time = Some(t);
        }
    } else {
        for (req, check) in [
            ("D.45", "cades-message-digest"),
            names.signing_time,
            names.signing_cert,
            ("D.46", "cades-ess-cert-id"),
        ] {
            c.skip(req, check, "no signed attributes");
        }
    }

    // DER order, and the signature over the SET OF encoding.
    c.judge(
        "D.45",
        "cades-signed-attributes-sorted",
        cms::signed_attributes_sorted(si),
    );
    c.judge(
        "D.45",
        "cades-signature",
        cms::signature_over_attributes(
            si,
            signer.as_ref(),
            digest_hash.as_ref().ok().copied(),
            "the signer certificate is unknown",
        ),
    );

    // The signer certificate at the signing time.
    let what_time = match profile {
        Profile::Cades => "the signing-time",
        Profile::Pades { .. } => "/M",
    };
    match (&signer, signing_time) {
        (Some(cert), Some(t)) => c.check(
            "D.45",
            "cades-signer-validity",
            if cert.valid_at(t) {
                Ok(format!(
                    "{what_time} {} within {}",
                    time::rfc3339(t),
                    cert.validity()
                ))
            } else {
                Err(format!(
                    "{what_time} {} is outside the signer certificate's validity {}",
                    time::rfc3339(t),
                    cert.validity()
                ))
            },
        ),
        (None, _) => c.skip(
            "D.45",
            "cades-signer-validity",
            "the signer certificate is unknown",
        ),
        (_, None) => c.skip("D.45", "cades-signer-validity", "no signing time to check"),
    }

    // D.46: the chain, each certificate once; and to the trust anchors.
    let anchors: Vec<Cert> = ca.iter().filter_map(|d| Cert::from_der(d).ok()).collect();
    match &signer {
        Some(cert) => c.check(
            "D.46",
            "cades-chain-included",
            chain_included(cert, &certs, &unparsed, &anchors),
        ),
        None => c.skip(
            "D.46",
            "cades-chain-included",
            "the signer certificate is unknown",
        ),
    }
    match &signer {
        _ if ca.is_empty() => c.skip("D.46", "cades-signer-chain", "no trust anchor given (--ca)"),
        Some(cert) => c.check(
            "D.46",
            "cades-signer-chain",
            cms::chain(cert, &certs, &anchors, signing_time, "the signing time"),
        ),
        None => c.skip(
            "D.46",
            "cades-signer-chain",
            "the signer certificate is unknown",
        ),
    }

    // D.47: no MD5 anywhere; algorithm protection when present; TS 119 312.
    let md5: Vec<&str> = MD5_OIDS
        .iter()
        .filter(|(_, enc)| input.windows(enc.len()).any(|w| w == *enc))
        .map(|(n, _)| *n)
        .collect();
    c.check(
        "D.47",
        "cades-no-md5",
        if md5.is_empty() {
            Ok("no MD5 algorithm identifier anywhere in the CMS".into())
        } else {
            Err(format!("the CMS names {}", md5.join(" and ")))
        },
    );
    if attrs.is_none() {
        c.skip("D.47", "cades-algorithm-protection", "no signed attributes");
    } else {
        let ap = attr_values(oid::ALGORITHM_PROTECTION);
        c.check(
            "D.47",
            "cades-algorithm-protection",
            match ap.as_slice() {
                [] => Ok("absent (optional, RFC 6211)".into()),
                [vals] if vals.len() == 1 => {
                    cms::algorithm_protection(&vals[0], &si.digest_alg, &si.sig_alg)
                }
                _ => Err("more than one cms-algorithm-protection value".into()),
            },
        );
    }
    match &signer {
        Some(cert) => c.check(
            "D.47",
            "cades-algorithms",
            digest_algorithm(si, &sd.digest_algorithms, &digest_hash).and_then(|()| {
                cms::algorithms(cert, &si.sig_alg, digest_hash.as_ref().ok().copied())
            }),
        ),
        None => c.skip(
            "D.47",
            "cades-algorithms",
            "the signer certificate is unknown",
        ),
    }

    // D.48: the signature-time-stamp tokens.
    time_stamps(c, si, signer.as_ref(), signing_time, ca, &certs, &mut facts);
    facts
}

/// The SignerInfo's digestAlgorithm: usable, parameters absent or NULL, and listed in
/// SignedData.digestAlgorithms.
fn digest_algorithm(
    si: &SignerInfo<'_>,
    listed: &[AlgId],
    hash: &Result<Hash, String>,
) -> Result<(), String> {
    let h = hash
        .as_ref()
        .map_err(|e| format!("SignerInfo digestAlgorithm: {e}"))?;
    if !si.digest_alg.params_absent_or_null() {
        return Err("digestAlgorithm parameters neither absent nor NULL".into());
    }
    if !listed.iter().any(|a| a.oid == h.oid()) {
        return Err(format!(
            "{} is not in SignedData.digestAlgorithms",
            h.name()
        ));
    }
    Ok(())
}

/// D.46: the included certificates are each there once and lead from the signer up to
/// a self-signed certificate or to the issuer's trust anchor.
fn chain_included(
    signer: &Cert,
    certs: &[Cert],
    unparsed: &[String],
    anchors: &[Cert],
) -> Result<String, String> {
    if let Some(u) = unparsed.first() {
        return Err(format!("{u} does not parse"));
    }
    for (i, a) in certs.iter().enumerate() {
        if certs[..i].iter().any(|b| b.der == a.der) {
            return Err(format!(
                "certificate {} is included more than once",
                a.subject_text()
            ));
        }
    }
    let mut current = signer.clone();
    let mut path = vec![current.subject_text()];
    for _ in 0..8 {
        if current.subject == current.issuer {
            return Ok(format!(
                "{} certificate{}, each once: {}",
                certs.len(),
                plural(certs.len()),
                path.join(" ← ")
            ));
        }
        let issuer = certs.iter().find(|c| c.issued(&current));
        match issuer {
            Some(i) => {
                path.push(i.subject_text());
                current = i.clone();
            }
            None if anchors.is_empty() => {
                return Ok(format!(
                    "{} certificate{}, each once: {}; the issuer {} of the last is not included (the trust anchor; no --ca to confirm it)",
                    certs.len(),
                    plural(certs.len()),
                    path.join(" ← "),
                    crate::cert::name_text(&current.issuer)
                ));
            }
            None if anchors.iter().any(|a| a.subject == current.issuer) => {
                return Ok(format!(
                    "{} certificate{}, each once: {} ← the trust anchor",
                    certs.len(),
                    plural(certs.len()),
                    path.join(" ← ")
                ));
            }
            None => {
                return Err(format!(
                    "the issuer {} of {} is neither included nor a trust anchor",
                    crate::cert::name_text(&current.issuer),
                    current.subject_text()
                ));
            }
        }
    }
    Err("no end to the included chain within 8 certificates".into())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
