//! Issue #16 acceptance, time travel (`faketime`, Debian's package; ops/dev-setup.sh): a
//! record made today by a TSA whose certificate expires in two days (a test PKI: the
//! dev intermediate issues short-lived certificates for the SoftHSM TSA keys), renewed
//! today by the TSA with its lasting dev certificate, still verifies with `hanko evidence
//! verify` five days later; the same record without the renewal fails there, naming the
//! expired certificate. The renewal helpers are `renewal.rs`'s.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common::log::{TestDb, shared_dev_data_dir, start_dev_server};
use crate::common::text;
use crate::renewal::{
    ARCHIVER_KEY, DAY, archived_record, config, refused, renew, renewed, verify, write,
};

/// A copy of each TSA key's dev chain whose certificate expires `lifetime` from now,
/// issued by the dev intermediate (its DEV-ONLY key file): (label, chain file).
fn short_lived_tsa_chains(work: &Path, lifetime: Duration) -> Vec<(String, PathBuf)> {
    use hanko_pki::cert::Certificate;
    use hanko_pki::soft::SoftwareSigner;
    use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
    use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
    let pki = shared_dev_data_dir().join("dev-pki");
    let read = |n: &str| std::fs::read_to_string(pki.join(n)).unwrap();
    let inter = Certificate::from_pem(&read("intermediate.pem")).unwrap();
    let key = SoftwareSigner::from_pkcs8_pem(
        &read("intermediate.key.DEV-ONLY.pem"),
        SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
    )
    .unwrap();
    let now = SystemTime::now();
    ["tsa-rsa3072", "tsa-p256"]
        .iter()
        .map(|label| {
            let leaf = Certificate::from_pem(&read(&format!("{label}.pem"))).unwrap();
            let start = now - Duration::from_secs(3600);
            let end = now + lifetime;
            let name = build_name(&[
                (NameAttr::Country, "JP"),
                (NameAttr::Organization, "Hanko Dev"),
                (
                    NameAttr::CommonName,
                    &format!("Hanko short-lived TSA {label}"),
                ),
            ])
            .unwrap();
            let params = CertParams::new(
                CertProfile::Tsa {
                    non_repudiation: false,
                    private_key_usage_period: Some((start, end)),
                },
                name,
                start,
                end,
            );
            let cert = crate::common::log::block_on(issue_certificate(
                &params,
                leaf.spki_der(),
                Some(&inter),
                &key,
            ))
            .unwrap();
            let chain = work.join(format!("{label}-short-chain.pem"));
            std::fs::write(&chain, format!("{}{}", cert.to_pem(), inter.to_pem())).unwrap();
            (label.to_string(), chain)
        })
        .collect()
}

#[test]
fn time_travel_a_renewed_record_outlives_its_first_tsa_certificate() {
    let db = TestDb::sqlite();
    let work = db.dir.path().to_owned();
    let dev = shared_dev_data_dir();
    let root = dev.join("dev-pki/root.pem");
    let data = write(&work, "contract.pdf", b"a contract kept for thirty years");

    // Today, a TSA whose certificate expires in two days makes the record.
    let chains = short_lived_tsa_chains(&work, 2 * DAY);
    let short = config(&work, "short.toml", |t| {
        for k in t.get_mut("keys").unwrap().as_array_mut().unwrap() {
            let k = k.as_table_mut().unwrap();
            let label = k.get("label").and_then(|l| l.as_str()).map(str::to_owned);
            if let Some((_, chain)) = chains
                .iter()
                .find(|(l, _)| label.as_deref() == Some(l.as_str()))
            {
                k.insert("chain".into(), chain.to_str().unwrap().into());
            }
        }
    });
    let server = start_dev_server(dev, &db, Some(&short));
    let record = write(&work, "record.ers", &archived_record(&server, &data));
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let out = verify(&record, &data, &[&root], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Hanko short-lived TSA"),
        "{}",
        text(&out)
    );

    // Renewed today by the TSA with its lasting dev certificate: due by the default
    // policy (its certificate expires within 365 days), so no force.
    let server = start_dev_server(dev, &db, Some(&config(&work, "long.toml", |_| {})));
    let er = std::fs::read(&record).unwrap();
    let got = renew(
        &server,
        Some(ARCHIVER_KEY),
        "application/octet-stream",
        "",
        &er,
    );
    let renewed_record = write(&work, "renewed.ers", &renewed(got, "time-stamp"));
    // The renewed record is not due again.
    let again = std::fs::read(&renewed_record).unwrap();
    refused(
        renew(
            &server,
            Some(ARCHIVER_KEY),
            "application/octet-stream",
            "",
            &again,
        ),
        409,
        "not due",
    );
    drop(server);

    // Five days later, the first certificate has expired.
    let later = verify(&renewed_record, &data, &[&root], Some("+5d"));
    assert!(later.status.success(), "{}", text(&later));
    assert!(text(&later).contains("valid at now"), "{}", text(&later));
    let without = verify(&record, &data, &[&root], Some("+5d"));
    assert_eq!(without.status.code(), Some(1), "{}", text(&without));
    let why = text(&without);
    assert!(
        why.contains("Hanko short-lived TSA") && why.contains("now"),
        "the reason should name the expired certificate: {why}"
    );
}
