//! Every object identifier Hanko uses, once: name, dotted form and where it is defined.
//!
//! Each OID is written exactly once, as its dotted literal, in the table below. From that
//! one literal the table derives the forms the code needs:
//!
//! ```text
//!   "1.2.840.113549.1.9.52" ──> oid::CMS_ALGORITHM_PROTECTION   const_oid::ObjectIdentifier
//!                           │       .as_bytes()                  DER content octets (const)
//!                           │                                    for the hand-written encoders
//!                           └─> oid::dotted::CMS_ALGORITHM_PROTECTION   &str, for code that
//!                                                                compares dotted strings (rasn)
//! ```
//!
//! `const_oid::ObjectIdentifier` is the type `der`, `spki` and `x509-cert` use, so
//! certificate code compares against these constants directly; rasn-based code (CMS,
//! TSP) converts with [`to_rasn`]. A unit test checks every entry's dotted form against
//! const-oid's own OID database (its names come from the RFCs) and the content octets of
//! the algorithm OIDs against the bytes OpenSSL writes.
//!
//! # What this module does not do
//! It has no logic: which hash is weak, which extension may be critical, which
//! AlgorithmIdentifier carries NULL parameters are decided in [`crate::alg`] and
//! [`crate::cert`]. Configuration values (a TSA's own policy OIDs) are not here either.

/// The type of every entry: the OID type of `der`, `spki` and `x509-cert`.
pub use const_oid::ObjectIdentifier;

macro_rules! oids {
    ($( $(#[$doc:meta])* $name:ident = $dotted:literal, $asn1:literal; )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\n`", $dotted, "` (`", $asn1, "`)")]
            pub const $name: ObjectIdentifier = ObjectIdentifier::new_unwrap($dotted);
        )*

        /// The same OIDs in dotted form, for code that compares strings (rasn's
        /// `ObjectIdentifier` displays as dotted text).
        pub mod dotted {
            $(
                #[doc = concat!("`", $asn1, "`: see [`super::", stringify!($name), "`].")]
                pub const $name: &str = $dotted;
            )*
        }

        /// Every entry: `(ASN.1 name, OID)`, for the tests and for diagnostics.
        pub const ALL: &[(&str, ObjectIdentifier)] = &[ $( ($asn1, $name), )* ];
    };
}

oids! {
    // ---- Hash algorithms ----
    /// SHA-256 (RFC 5754 §2).
    SHA256 = "2.16.840.1.101.3.4.2.1", "id-sha256";
    /// SHA-384 (RFC 5754 §2).
    SHA384 = "2.16.840.1.101.3.4.2.2", "id-sha384";
    /// SHA-512 (RFC 5754 §2).
    SHA512 = "2.16.840.1.101.3.4.2.3", "id-sha512";
    /// SHA-224 (RFC 5754 §2). Known only to be refused by name (too short for ETSI TS
    /// 119 312).
    SHA224 = "2.16.840.1.101.3.4.2.4", "id-sha224";
    /// SHA-1 (RFC 3279 §2.2.1). Known only to be refused by name.
    SHA1 = "1.3.14.3.2.26", "id-sha1";
    /// MD5 (RFC 3279 §2.2.1). Known only to be refused by name.
    MD5 = "1.2.840.113549.2.5", "id-md5";
    /// MD2 (RFC 3279 §2.2.1). Known only to be refused by name.
    MD2 = "1.2.840.113549.2.2", "id-md2";
    /// RIPEMD-160 (ISO/IEC 10118-3, TeleTrusT arc). Known only to be refused by name.
    RIPEMD160 = "1.3.36.3.2.1", "ripemd160";

    // ---- Key and signature algorithms ----
    /// rsaEncryption: RSA public keys (RFC 8017 A.1, RFC 3279 §2.3.1).
    RSA_ENCRYPTION = "1.2.840.113549.1.1.1", "rsaEncryption";
    /// id-mgf1, the mask generation function of RSASSA-PSS (RFC 8017 A.2.1).
    MGF1 = "1.2.840.113549.1.1.8", "id-mgf1";
    /// id-RSASSA-PSS (RFC 4055 §3, RFC 8017 A.2.3).
    RSASSA_PSS = "1.2.840.113549.1.1.10", "id-RSASSA-PSS";
    /// sha256WithRSAEncryption: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 4055 §5).
    SHA256_WITH_RSA_ENCRYPTION = "1.2.840.113549.1.1.11", "sha256WithRSAEncryption";
    /// sha384WithRSAEncryption (RFC 4055 §5).
    SHA384_WITH_RSA_ENCRYPTION = "1.2.840.113549.1.1.12", "sha384WithRSAEncryption";
    /// sha512WithRSAEncryption (RFC 4055 §5).
    SHA512_WITH_RSA_ENCRYPTION = "1.2.840.113549.1.1.13", "sha512WithRSAEncryption";
    /// id-ecPublicKey: EC public keys with named-curve parameters (RFC 5480 §2.1.1).
    EC_PUBLIC_KEY = "1.2.840.10045.2.1", "id-ecPublicKey";
    /// NIST P-256, prime256v1 (RFC 5480 §2.1.1.1).
    SECP256R1 = "1.2.840.10045.3.1.7", "secp256r1";
    /// NIST P-384 (RFC 5480 §2.1.1.1).
    SECP384R1 = "1.3.132.0.34", "secp384r1";
    /// ecdsa-with-SHA256 (RFC 5758 §3.2).
    ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2", "ecdsa-with-SHA256";
    /// ecdsa-with-SHA384 (RFC 5758 §3.2).
    ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3", "ecdsa-with-SHA384";
    /// ecdsa-with-SHA512 (RFC 5758 §3.2).
    ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4", "ecdsa-with-SHA512";
    /// id-Ed25519: the key and the signature algorithm (RFC 8410 §3).
    ED25519 = "1.3.101.112", "id-Ed25519";

    // ---- Certificate extensions and key purposes (RFC 5280 §4.2) ----
    /// subjectKeyIdentifier (RFC 5280 §4.2.1.2).
    SUBJECT_KEY_IDENTIFIER = "2.5.29.14", "id-ce-subjectKeyIdentifier";
    /// keyUsage (RFC 5280 §4.2.1.3).
    KEY_USAGE = "2.5.29.15", "id-ce-keyUsage";
    /// privateKeyUsagePeriod (RFC 3280 §4.2.1.4; EN 319 422 recommends it for TSUs).
    PRIVATE_KEY_USAGE_PERIOD = "2.5.29.16", "id-ce-privateKeyUsagePeriod";
    /// subjectAltName (RFC 5280 §4.2.1.6).
    SUBJECT_ALT_NAME = "2.5.29.17", "id-ce-subjectAltName";
    /// basicConstraints (RFC 5280 §4.2.1.9).
    BASIC_CONSTRAINTS = "2.5.29.19", "id-ce-basicConstraints";
    /// certificatePolicies (RFC 5280 §4.2.1.4).
    CERTIFICATE_POLICIES = "2.5.29.32", "id-ce-certificatePolicies";
    /// authorityKeyIdentifier (RFC 5280 §4.2.1.1).
    AUTHORITY_KEY_IDENTIFIER = "2.5.29.35", "id-ce-authorityKeyIdentifier";
    /// extendedKeyUsage (RFC 5280 §4.2.1.12).
    EXTENDED_KEY_USAGE = "2.5.29.37", "id-ce-extKeyUsage";
    /// id-kp-timeStamping, the one purpose a TSA certificate may carry (RFC 3161 §2.3).
    KP_TIME_STAMPING = "1.3.6.1.5.5.7.3.8", "id-kp-timeStamping";
    /// id-kp-serverAuth (RFC 5280 §4.2.1.12): a TLS server certificate (the dev TLS
    /// listener's).
    KP_SERVER_AUTH = "1.3.6.1.5.5.7.3.1", "id-kp-serverAuth";
    /// id-pe-qcStatements (RFC 3739 §3.2.6); EN 319 422 §9.1 puts it into TSTInfo.
    QC_STATEMENTS = "1.3.6.1.5.5.7.1.3", "id-pe-qcStatements";
    /// esi4-qtstStatement-1 (EN 319 422 §9.1): the token is an EU qualified electronic
    /// time stamp.
    QTST_STATEMENT_1 = "0.4.0.19422.1.1", "esi4-qtstStatement-1";

    // ---- Name attributes (X.520; RFC 5280 Appendix A) ----
    /// commonName.
    COMMON_NAME = "2.5.4.3", "id-at-commonName";
    /// serialNumber (the subject attribute, not the certificate serial).
    SERIAL_NUMBER = "2.5.4.5", "id-at-serialNumber";
    /// countryName.
    COUNTRY_NAME = "2.5.4.6", "id-at-countryName";
    /// organizationName.
    ORGANIZATION_NAME = "2.5.4.10", "id-at-organizationName";
    /// organizationalUnitName.
    ORGANIZATIONAL_UNIT_NAME = "2.5.4.11", "id-at-organizationalUnitName";
    /// organizationIdentifier (X.520; EN 319 412-1 §5.1.4).
    ORGANIZATION_IDENTIFIER = "2.5.4.97", "id-at-organizationIdentifier";

    // ---- CMS and TSP content types and attributes ----
    /// id-data (RFC 5652 §4).
    DATA = "1.2.840.113549.1.7.1", "id-data";
    /// id-signedData (RFC 5652 §5.1).
    SIGNED_DATA = "1.2.840.113549.1.7.2", "id-signedData";
    /// id-contentType (RFC 5652 §11.1).
    CONTENT_TYPE = "1.2.840.113549.1.9.3", "id-contentType";
    /// id-messageDigest (RFC 5652 §11.2).
    MESSAGE_DIGEST = "1.2.840.113549.1.9.4", "id-messageDigest";
    /// id-signingTime (RFC 5652 §11.3).
    SIGNING_TIME = "1.2.840.113549.1.9.5", "id-signingTime";
    /// id-ct-TSTInfo (RFC 3161 §2.4.2).
    TST_INFO = "1.2.840.113549.1.9.16.1.4", "id-ct-TSTInfo";
    /// id-aa-signingCertificate, ESSCertID v1 (RFC 2634 §5.4), which can name a
    /// certificate only by SHA-1. Hanko never writes it (CONFORMANCE B.21); known so that
    /// tests can assert its absence.
    SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12", "id-aa-signingCertificate";
    /// id-aa-signingCertificateV2 (RFC 5035 §3).
    SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47", "id-aa-signingCertificateV2";
    /// id-aa-CMSAlgorithmProtection (RFC 6211 §2). rasn 0.30's constant for it is wrong.
    CMS_ALGORITHM_PROTECTION = "1.2.840.113549.1.9.52", "id-aa-CMSAlgorithmProtection";
    /// id-aa-contentHint (RFC 2634 §2.9): content-hints, a CAdES signed attribute.
    CONTENT_HINTS = "1.2.840.113549.1.9.16.2.4", "id-aa-contentHint";
    /// id-aa-timeStampToken (RFC 3161 Appendix A), which CAdES calls
    /// id-aa-signatureTimeStampToken: the B-T unsigned attribute.
    SIGNATURE_TIME_STAMP_TOKEN = "1.2.840.113549.1.9.16.2.14", "id-aa-timeStampToken";
    /// id-aa-ets-commitmentType (RFC 5126 §5.11.1): commitment-type-indication.
    COMMITMENT_TYPE_INDICATION = "1.2.840.113549.1.9.16.2.16", "id-aa-ets-commitmentType";
    /// id-aa-ets-mimeType (EN 319 122-1): the CAdES mime-type signed attribute.
    MIME_TYPE = "0.4.0.1733.2.1", "id-aa-ets-mimeType";

    // ---- CAdES commitment types (RFC 5126 §5.11.1) ----
    /// id-cti-ets-proofOfOrigin: the usual commitment of an organisation's seal.
    CTI_PROOF_OF_ORIGIN = "1.2.840.113549.1.9.16.6.1", "id-cti-ets-proofOfOrigin";
    /// id-cti-ets-proofOfReceipt.
    CTI_PROOF_OF_RECEIPT = "1.2.840.113549.1.9.16.6.2", "id-cti-ets-proofOfReceipt";
    /// id-cti-ets-proofOfDelivery.
    CTI_PROOF_OF_DELIVERY = "1.2.840.113549.1.9.16.6.3", "id-cti-ets-proofOfDelivery";
    /// id-cti-ets-proofOfSender.
    CTI_PROOF_OF_SENDER = "1.2.840.113549.1.9.16.6.4", "id-cti-ets-proofOfSender";
    /// id-cti-ets-proofOfApproval.
    CTI_PROOF_OF_APPROVAL = "1.2.840.113549.1.9.16.6.5", "id-cti-ets-proofOfApproval";
    /// id-cti-ets-proofOfCreation.
    CTI_PROOF_OF_CREATION = "1.2.840.113549.1.9.16.6.6", "id-cti-ets-proofOfCreation";

    // ---- Time-stamp policies defined by standards ----
    /// best-practices-ts-policy (EN 319 421 §5.2): itu-t(0) identified-organization(4)
    /// etsi(0) time-stamp-policy(2023) policy-identifiers(1) best-practices-ts-policy(1).
    ETSI_BEST_PRACTICES_TS_POLICY = "0.4.0.2023.1.1", "best-practices-ts-policy";
}

/// The same OID as rasn's type, for the CMS and TSP structures built with rasn.
///
/// Infallible: a `const_oid::ObjectIdentifier` was validated when it was made (first arc
/// at most 2, second below 40 under 0 and 1, arcs within `u32`), which is all rasn checks.
pub fn to_rasn(oid: &ObjectIdentifier) -> rasn::types::ObjectIdentifier {
    rasn::types::ObjectIdentifier::new_unchecked(std::borrow::Cow::Owned(oid.arcs().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries const-oid's database knows under another spelling (LDAP short names,
    /// PKCS#9 prefixes).
    const DB_SPELLING: &[(&str, &str)] = &[
        ("id-at-commonName", "cn"),
        ("id-at-countryName", "c"),
        ("id-at-organizationName", "o"),
        ("id-at-organizationalUnitName", "ou"),
        ("id-contentType", "pkcs-9-at-contentType"),
        ("id-messageDigest", "pkcs-9-at-messageDigest"),
        ("id-signingTime", "pkcs-9-at-signingTime"),
        ("id-aa-CMSAlgorithmProtection", "id-aa-cmsAlgorithmProtect"),
    ];

    #[test]
    fn every_dotted_form_is_the_literal_and_known_names_agree_with_const_oid() {
        let mut names_checked = 0;
        for (name, oid) in ALL {
            // The constant and its dotted twin come from one literal; the dotted text is
            // what `Display` gives back.
            let again =
                ObjectIdentifier::new(&oid.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&again, oid, "{name}");
            if let Some(db_name) = const_oid::db::DB.by_oid(oid) {
                let ours = *name;
                // The database's names drop the `id-at-` / `id-ce-` style prefixes
                // sometimes; compare without them and case-insensitively.
                let strip = |s: &str| {
                    s.trim_start_matches("id-at-")
                        .trim_start_matches("id-ce-")
                        .trim_start_matches("id-")
                        .to_ascii_lowercase()
                };
                let ours = DB_SPELLING
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(ours, |(_, db)| *db);
                assert_eq!(strip(db_name), strip(ours), "{name} ({oid})");
                names_checked += 1;
            }
        }
        assert!(
            names_checked > ALL.len() / 2,
            "only {names_checked} names checked"
        );
        let mut seen: Vec<&ObjectIdentifier> = Vec::new();
        for (name, oid) in ALL {
            assert!(!seen.contains(&oid), "{name} appears twice");
            seen.push(oid);
        }
    }

    #[test]
    fn content_octets_are_the_bytes_openssl_writes() {
        // From `openssl asn1parse -dump` of OpenSSL-made certificates and keys.
        let cases: [(&ObjectIdentifier, &str); 9] = [
            (&SHA256, "608648016503040201"),
            (&SHA512, "608648016503040203"),
            (&RSA_ENCRYPTION, "2a864886f70d010101"),
            (&RSASSA_PSS, "2a864886f70d01010a"),
            (&SHA256_WITH_RSA_ENCRYPTION, "2a864886f70d01010b"),
            (&ECDSA_WITH_SHA384, "2a8648ce3d040303"),
            (&SECP256R1, "2a8648ce3d030107"),
            (&SECP384R1, "2b81040022"),
            (&ED25519, "2b6570"),
        ];
        for (oid, hex) in cases {
            assert_eq!(hex::encode(oid.as_bytes()), hex, "{oid}");
        }
    }

    #[test]
    fn dotted_twins_and_rasn_agree() {
        assert_eq!(dotted::TST_INFO, TST_INFO.to_string());
        assert_eq!(dotted::PRIVATE_KEY_USAGE_PERIOD, "2.5.29.16");
        for (name, oid) in ALL {
            let r = to_rasn(oid);
            assert_eq!(r.to_string(), oid.to_string(), "{name}");
            assert_eq!(
                rasn::types::ObjectIdentifier::new(r.to_vec()),
                Some(r),
                "{name}"
            );
        }
    }
}
