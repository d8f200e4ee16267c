//! The signature-time-stamps of a CAdES or PAdES CMS (D.48): the level found (B-B or
//! B-T), each token checked as any token over the signature value, made while the signer
//! certificate was valid.

use super::Facts;
use crate::cert::Cert;
use crate::cms::{self, Ctx, SignerInfo, oid};
use crate::crypto::Hash;
use crate::der::Tlv;
use crate::time;
use crate::token::{self, Expect};

/// D.48: the level found, each signature-time-stamp checked as a token whose imprint is
/// the hash of the signature value (the SignedData's `certs` may complete its TSA's
/// chain), and made while the signer certificate was valid.
pub(super) fn time_stamps(
    c: &mut Ctx<'_>,
    si: &SignerInfo<'_>,
    signer: Option<&Cert>,
    signing_time: Option<i64>,
    ca: &[Vec<u8>],
    certs: &[Cert],
    facts: &mut Facts,
) {
    let unsigned = match si.unsigned_attrs.as_ref().map(cms::attributes) {
        None => Vec::new(),
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            c.fail("D.48", "cades-level", format!("unsigned attributes: {e}"));
            c.skip(
                "D.48",
                "cades-time-stamp-in-validity",
                "the unsigned attributes do not parse",
            );
            return;
        }
    };
    let tokens: Vec<Tlv<'_>> = unsigned
        .iter()
        .filter(|(o, _)| o == oid::SIGNATURE_TIME_STAMP)
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let empty = unsigned
        .iter()
        .any(|(o, v)| o == oid::SIGNATURE_TIME_STAMP && v.is_empty());
    facts.time_stamps = tokens.len();
    c.check(
        "D.48",
        "cades-level",
        if empty {
            Err("a signature-time-stamp attribute without a value".into())
        } else if tokens.is_empty() {
            Ok("B-B (no signature-time-stamp)".into())
        } else {
            Ok(format!(
                "B-T: {} signature-time-stamp token{} (checked as time-stamp tokens: the A and B lines)",
                tokens.len(),
                if tokens.len() == 1 { "" } else { "s" }
            ))
        },
    );
    if tokens.is_empty() {
        c.skip(
            "D.48",
            "cades-time-stamp-in-validity",
            "B-B: no signature-time-stamp",
        );
        return;
    }
    for (i, tok) in tokens.iter().enumerate() {
        let label = match (c.label.is_empty(), tokens.len()) {
            (true, 1) => "signature-time-stamp".to_owned(),
            (true, _) => format!("signature-time-stamp {}", i + 1),
            (false, 1) => format!("{}, signature-time-stamp", c.label),
            (false, _) => format!("{}, signature-time-stamp {}", c.label, i + 1),
        };
        let imprint = crate::token::imprint_alg(tok.raw).and_then(|alg| {
            let h = Hash::from_oid(&alg).ok()?;
            Some((alg, h.digest(si.signature)))
        });
        // The SignedData's certificates may complete the TSA's chain (as a validator
        // would use them).
        let expect = Expect {
            imprint,
            ca: ca.to_vec(),
            intermediates: certs.iter().map(|c| c.der.clone()).collect(),
            ..Expect::default()
        };
        let tf = token::check_token(tok.raw, &expect, &label, c.f);
        match (signer, tf.gen_time.as_ref().map(|g| g.unix)) {
            (Some(cert), Some(t)) => c.check(
                "D.48",
                "cades-time-stamp-in-validity",
                if !cert.valid_at(t) {
                    Err(format!(
                        "{label}: genTime {} is outside the signer certificate's validity {}",
                        time::rfc3339(t),
                        cert.validity()
                    ))
                } else if signing_time.is_some_and(|s| t + 1 < s) {
                    Err(format!(
                        "{label}: genTime {} is before the signing time {}",
                        time::rfc3339(t),
                        time::rfc3339(signing_time.unwrap_or_default())
                    ))
                } else {
                    Ok(format!(
                        "genTime {} within the signer certificate's validity{}",
                        time::rfc3339(t),
                        if signing_time.is_some() {
                            ", not before the signing time"
                        } else {
                            ""
                        }
                    ))
                },
            ),
            (None, _) => c.skip(
                "D.48",
                "cades-time-stamp-in-validity",
                "the signer certificate is unknown",
            ),
            (_, None) => c.skip(
                "D.48",
                "cades-time-stamp-in-validity",
                "the token's genTime is unreadable",
            ),
        }
    }
}
