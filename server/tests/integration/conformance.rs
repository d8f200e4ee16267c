//! Issue #19 acceptance: `hanko-conformance` (its library, the code path that shares
//! nothing with Hanko's builders) audits `serve --dev` end to end: the TSA with its
//! RSA-3072 and ECDSA P-256 units, over HTTP and HTTPS. Every check passes; the only
//! SKIP is the EU-qualified profile, which the dev server does not claim.

use std::collections::BTreeSet;
use std::time::Duration;

use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::{cert, tsa};

use crate::common::log::{TestDb, shared_dev_data_dir, start_dev_server};

/// The dev server's ECDSA policy (`[tsa.policy_keys]` in the dev hanko.toml).
const ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";

fn with(f: &Findings, outcome: Outcome) -> BTreeSet<&'static str> {
    f.list()
        .iter()
        .filter(|x| x.outcome == outcome)
        .map(|x| x.check)
        .collect()
}

#[test]
fn hanko_conformance_passes_the_dev_tsa_rsa_and_ecdsa_over_http_and_https() {
    let data_dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let server = start_dev_server(data_dir, &db, None);
    let root_pem = std::fs::read(data_dir.join("dev-pki/root.pem")).unwrap();
    let roots = cert::certificates_from_pem_or_der(&root_pem).unwrap();
    let target = |url: String, policy: Option<&str>| tsa::Target {
        url,
        ca: roots.clone(),
        policy: policy.map(str::to_owned),
        qualified: false,
        tls_ca: Some(root_pem.clone()),
        timeout: Duration::from_secs(30),
    };
    let http = format!("http://{}/tsa", server.addr);
    let https = format!("https://localhost:{}/tsa", server.tls_addr().port());
    for (url, policy, key) in [
        (http.clone(), None, "RSA-3072"),
        (http, Some(ECDSA_POLICY), "ECDSA P-256"),
        (https, Some(ECDSA_POLICY), "ECDSA P-256"),
    ] {
        let f = tsa::probe(&target(url.clone(), policy)).unwrap();
        assert!(
            with(&f, Outcome::Fail).is_empty(),
            "{url} {policy:?}: {:#?}",
            f.list()
        );
        assert_eq!(with(&f, Outcome::Skip), BTreeSet::from(["qc-statements"]));
        assert!(with(&f, Outcome::Pass).len() >= 38, "{:#?}", f.list());
        let alg = f.list().iter().find(|x| x.check == "algorithms").unwrap();
        assert!(alg.detail.starts_with(key), "{url}: {}", alg.detail);
    }
    server.stop();
}
