//! The TSA certificate's checks (RFC 3161 §2.3, EN 319 422 §6: requirements B.31 and
//! B.32): its extendedKeyUsage, profile, validity at genTime and chain to the given
//! anchors, and its subject. Run by [`crate::token::check_token`] once the signer
//! certificate is known.

use crate::cert::{self, Cert};
use crate::cms::{self, Ctx};
use crate::token::Expect;
use crate::{der, time};

pub(crate) fn certificate_checks(
    c: &mut Ctx<'_>,
    cert: &Cert,
    gen_time: Option<i64>,
    expect: &Expect,
    token_certs: &[Cert],
) {
    // B.31 EKU: exactly one extension, critical, timeStamping only.
    let ekus: Vec<_> = cert.extensions_named(cert::oid::EKU).collect();
    c.check(
        "B.31",
        "tsa-certificate-eku",
        match ekus.as_slice() {
            [e] => {
                let purposes: Vec<String> = der::read_exact(&e.value)
                    .and_then(|s| s.children())
                    .map(|k| k.iter().filter_map(|o| o.oid().ok()).collect())
                    .unwrap_or_default();
                if !e.critical {
                    Err("extendedKeyUsage is not critical (RFC 3161 §2.3)".into())
                } else if purposes != [cert::oid::TIME_STAMPING] {
                    Err(format!(
                        "extendedKeyUsage {purposes:?}, not id-kp-timeStamping alone"
                    ))
                } else {
                    Ok("one critical extendedKeyUsage, id-kp-timeStamping alone".into())
                }
            }
            [] => Err("no extendedKeyUsage".into()),
            _ => Err("more than one extendedKeyUsage extension".into()),
        },
    );
    // B.31 profile: not a CA, keyUsage for signing, no duplicate or unknown critical ext.
    let known = [
        cert::oid::EKU,
        cert::oid::KEY_USAGE,
        cert::oid::BASIC_CONSTRAINTS,
        cert::oid::SKI,
        cert::oid::AKI,
        cert::oid::PKUP,
        cert::oid::SAN,
        cert::oid::CERT_POLICIES,
        cert::oid::CRL_DP,
        cert::oid::AIA,
        cert::oid::QC_STATEMENTS,
    ];
    let mut seen = std::collections::HashSet::new();
    let duplicate = cert.extensions.iter().find(|e| !seen.insert(e.oid.clone()));
    let unknown_critical = cert
        .extensions
        .iter()
        .find(|e| e.critical && !known.contains(&e.oid.as_str()));
    let ku = cert.key_usage();
    let ku_malformed = ku.is_none() && cert.extensions_named(cert::oid::KEY_USAGE).next().is_some();
    c.check(
        "B.31",
        "tsa-certificate-profile",
        if cert.is_ca() {
            Err("the TSA certificate is a CA certificate".into())
        } else if ku_malformed {
            Err("keyUsage is not a well-formed BIT STRING".into())
        } else if let Some(d) = duplicate {
            Err(format!("extension {} appears twice", d.oid))
        } else if let Some(u) = unknown_critical {
            Err(format!("unknown critical extension {}", u.oid))
        } else if ku.as_ref().is_some_and(|b| {
            !b.first().copied().unwrap_or(false) && !b.get(1).copied().unwrap_or(false)
        }) {
            Err("keyUsage allows neither digitalSignature nor nonRepudiation".into())
        } else {
            Ok(
                "end-entity; keyUsage for signing; no duplicate or unknown critical extension"
                    .into(),
            )
        },
    );
    // B.31 validity at genTime.
    match gen_time {
        Some(t) => {
            let pkup = cert.private_key_usage_period();
            c.check(
                "B.31",
                "tsa-certificate-validity",
                if !cert.valid_at(t) {
                    Err(format!(
                        "genTime {} is outside the certificate's validity {}",
                        time::rfc3339(t),
                        cert.validity()
                    ))
                } else if let Some((from, until)) = pkup
                    && (from.is_some_and(|f| t < f) || until.is_some_and(|u| t > u))
                {
                    Err(format!(
                        "genTime {} is outside privateKeyUsagePeriod",
                        time::rfc3339(t)
                    ))
                } else {
                    Ok(format!(
                        "genTime within {}{}",
                        cert.validity(),
                        if pkup.is_some() {
                            " and privateKeyUsagePeriod"
                        } else {
                            ""
                        }
                    ))
                },
            );
        }
        None => c.skip("B.31", "tsa-certificate-validity", "no genTime"),
    }
    // Chain to the given anchors.
    if expect.ca.is_empty() {
        c.skip("B.31", "certificate-chain", "no trust anchor given (--ca)");
    } else {
        let anchors: Vec<Cert> = expect
            .ca
            .iter()
            .filter_map(|d| Cert::from_der(d).ok())
            .collect();
        let mut pool: Vec<Cert> = token_certs.to_vec();
        pool.extend(
            expect
                .intermediates
                .iter()
                .filter_map(|d| Cert::from_der(d).ok()),
        );
        c.check(
            "B.31",
            "certificate-chain",
            cms::chain(cert, &pool, &anchors, gen_time, "genTime"),
        );
    }
    // B.32 subject.
    let attrs = cert.subject_attributes();
    let has = |o: &str| attrs.iter().any(|(k, v)| k == o && !v.is_empty());
    let missing: Vec<&str> = [
        (cert::oid::COUNTRY, "countryName"),
        (cert::oid::ORGANIZATION, "organizationName"),
        (cert::oid::COMMON_NAME, "commonName"),
    ]
    .into_iter()
    .filter(|(o, _)| !has(o))
    .map(|(_, n)| n)
    .collect();
    c.check(
        "B.32",
        "tsa-certificate-subject",
        if missing.is_empty() {
            Ok(cert.subject_text())
        } else {
            Err(format!(
                "subject {} lacks {}",
                cert.subject_text(),
                missing.join(", ")
            ))
        },
    );
}
