//! What `hanko-bench seal` decides without timing anything: its options, the server
//! config it writes, the signature check, the ratios and the report lines.
#![allow(clippy::unwrap_used, reason = "tests")]

use clap::Parser;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::{KeyType, Signer as _};

use super::report::{call_label, median_line, medians, ratio, row_line, target};
use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
    Cli::try_parse_from(std::iter::once("seal").chain(argv.iter().copied())).map(|c| c.args)
}

#[test]
fn options_and_their_defaults() {
    let a = parse(&[]).unwrap();
    assert_eq!(a.hashes, [1, 64]);
    assert_eq!(a.common.clients, [16]);
    assert_eq!((a.port, a.common.repeat, a.common.seconds), (0, 1, 10.0));
    assert_eq!(a.verify, Both::Both);
    assert_eq!(a.verify.values(false), [true, false], "on first, then off");
    assert!(!a.cades);
    assert_eq!(a.check_signatures, 64);
    assert_eq!(keys(&a.common.keys).len(), 2);

    let a = parse(&[
        "--hashes",
        "1,8,64",
        "--clients",
        "4,16",
        "--key",
        "p256",
        "--verify",
        "off",
        "--cades",
        "--cades-bytes",
        "300",
        "--queue-depth",
        "512",
    ])
    .unwrap();
    assert_eq!(a.hashes, [1, 8, 64]);
    assert_eq!(a.common.clients, [4, 16]);
    assert_eq!(a.verify.values(false), [false]);
    assert_eq!(
        (a.cades, a.cades_bytes, a.queue_depth),
        (true, 300, Some(512))
    );
    let k = keys(&a.common.keys);
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].label, "seal-p256");

    // Refused by clap: a batch outside 1..=1024, an unknown key.
    assert!(parse(&["--hashes", "0"]).is_err());
    assert!(parse(&["--hashes", "1025"]).is_err());
    assert!(parse(&["--key", "ed25519"]).is_err());
    // Refused by `check`: nothing that measures.
    let mut a = parse(&["--hanko", "/nonexistent/hanko"]).unwrap();
    a.common.clients = vec![0];
    assert!(check(&a).unwrap_err().to_string().contains("--clients"));
    a.common.clients = vec![1];
    a.hashes.clear();
    assert!(
        check(&a)
            .unwrap_err()
            .to_string()
            .contains("nothing to measure")
    );
    a.cades = true;
    assert!(
        check(&a)
            .unwrap_err()
            .to_string()
            .contains("no hanko binary")
    );
    a.pdf = true;
    a.pdf_bytes = vec![100];
    assert!(check(&a).unwrap_err().to_string().contains("--pdf-bytes"));
    let a = parse(&["--pdf", "--pdf-bytes", "200000"]).unwrap();
    assert_eq!(
        (a.pdf, a.pdf_bytes.as_slice()),
        (true, [200_000].as_slice())
    );
    assert_eq!(parse(&[]).unwrap().pdf_bytes, [100_000, 5_000_000]);
}

#[test]
fn the_server_config_holds_every_batch() {
    let base: toml::Table =
        "dev = true\n[hsm]\nworkers = 2\nqueue_depth = 128\nverify_after_sign = true\n"
            .parse()
            .unwrap();
    let a = parse(&["--clients", "4,16"]).unwrap();
    assert_eq!(queue_depth(&a, &base), 16 * 64);
    let a = parse(&["--clients", "1"]).unwrap();
    assert_eq!(queue_depth(&a, &base), 128, "never below the dev config's");
    let a = parse(&["--queue-depth", "100"]).unwrap();
    assert_eq!(queue_depth(&a, &base), 100, "as given");

    let t: toml::Table = bench_config(&base, false, 1024, 64)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t["hsm"]["verify_after_sign"].as_bool(), Some(false));
    assert_eq!(t["hsm"]["queue_depth"].as_integer(), Some(1024));
    assert_eq!(t["hsm"]["workers"].as_integer(), Some(2));
    assert!(
        t.get("http").is_none(),
        "64 hashes is the server's default limit"
    );
    let t: toml::Table = bench_config(&base, true, 1024, 256)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t["hsm"]["verify_after_sign"].as_bool(), Some(true));
    assert_eq!(t["http"]["csc_max_hashes"].as_integer(), Some(256));
}

#[test]
fn kept_signatures_are_checked_against_the_key() {
    for (kt, alg) in [
        (
            KeyType::EcP256,
            DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        ),
        (
            KeyType::Rsa { bits: 2048 },
            DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        ),
    ] {
        let key = SoftwareSigner::generate(kt, alg.signature_algorithm()).unwrap();
        let other = SoftwareSigner::generate(kt, alg.signature_algorithm()).unwrap();
        let h1 = vec![1u8; 32];
        let h2 = vec![2u8; 32];
        let good = vec![
            (h1.clone(), key.sign_digest_now(alg, &h1).unwrap()),
            (h2.clone(), key.sign_digest_now(alg, &h2).unwrap()),
        ];
        let c = check_signatures(key.public_key_der(), alg, &good);
        assert_eq!((c.kept, c.ok), (2, 2), "{alg}");
        // Another key's signature, a signature of another hash.
        let bad = vec![
            (h1.clone(), other.sign_digest_now(alg, &h1).unwrap()),
            (h2.clone(), key.sign_digest_now(alg, &h1).unwrap()),
            (h1, key.sign_digest_now(alg, &h2).unwrap()),
        ];
        let c = check_signatures(key.public_key_der(), alg, &bad);
        assert_eq!((c.kept, c.ok), (3, 0), "{alg}");
        assert_eq!(check_signatures(key.public_key_der(), alg, &[]).kept, 0);
    }
}

fn pool(rate: f64) -> PoolRate {
    PoolRate {
        rate,
        p50_ms: 1.0,
        p99_ms: 2.0,
        errors: 0,
    }
}

/// A row of `signatures` in a 10 s window, raw rates 700 before and 740 after.
fn row(key: SealKey, call: Call, signatures: u64, other: f64) -> Row {
    let mut load = LoadResult {
        signatures,
        window: 10.0,
        ..LoadResult::default()
    };
    for ms in 1..=100 {
        load.calls.push(Duration::from_millis(ms));
    }
    Row {
        key,
        verify: true,
        call,
        clients: 16,
        round: 0,
        load,
        raw_before: pool(700.0),
        raw_after: pool(740.0),
        raw_other: 0.01,
        cpu: CpuSplit {
            server: 0.9,
            generator: 0.05,
            other,
        },
        checked: Checked { kept: 64, ok: 64 },
        sha256sum: None,
    }
}

#[test]
fn ratios_to_the_mean_raw_rate() {
    assert_eq!(ratio(684.0, 720.0), 0.95);
    assert_eq!(ratio(5.0, 0.0), 0.0, "no raw rate, no ratio");
    let r = row(KEYS[0], Call::SignHash(64), 6840, 0.0);
    assert_eq!(r.raw(), 720.0);
    assert_eq!(r.load.rate(), 684.0);
    assert!((r.ratio() - 0.95).abs() < 1e-12);
}

#[test]
fn targets_and_labels() {
    assert_eq!(target("seal-rsa3072", Call::SignHash(64)), Some(0.95));
    assert_eq!(target("seal-rsa3072", Call::SignHash(1)), None);
    assert_eq!(target("seal-p256", Call::SignHash(64)), None);
    assert_eq!(target("seal-rsa3072", Call::Cades), None);
    assert_eq!(call_label(Call::SignHash(64)), "signHash/64");
    assert_eq!(call_label(Call::Cades), "cades");
    assert_eq!(target("seal-rsa3072", Call::Pdf(100_000)), Some(0.8));
    assert_eq!(target("seal-rsa3072", Call::Pdf(5_000_000)), None);
    assert_eq!(target("seal-p256", Call::Pdf(100_000)), None);
    assert_eq!(call_label(Call::Pdf(100_000)), "pdf/100kB");
    assert_eq!(call_label(Call::Pdf(5_000_000)), "pdf/5MB");
}

#[test]
fn pdf_rows_report_mb_per_second_against_sha256sum() {
    // 20 seals of 5 MB over 10 s: 20 seals, 2 seals/s = 10 MB/s.
    let mut r = row(KEYS[0], Call::Pdf(5_000_000), 20, 0.0);
    assert_eq!(report::pdf_line(&r), None, "no sha256sum figure");
    r.sha256sum = Some(400.0);
    assert_eq!(
        report::pdf_line(&r).unwrap(),
        "  pdf/5MB: 10.0 MB/s sealed, sha256sum of the same file 400.0 MB/s (0.025 of it)"
    );
}

#[test]
fn report_lines() {
    let r = row(KEYS[0], Call::SignHash(64), 6840, 0.01);
    let line = row_line(&r, 0.05);
    let cols: Vec<&str> = line.split_whitespace().collect();
    // RSA-3072 on signHash/64 16 684.0 10.0 50.00 99.00 0 720.0 0.950 64/64 90/ 5/ 1 % 1 %
    assert_eq!(
        &cols[..12],
        [
            "RSA-3072",
            "on",
            "signHash/64",
            "16",
            "684.0",
            "10.0",
            "50.00",
            "99.00",
            "0",
            "720.0",
            "0.950",
            "64/64"
        ],
        "{line}"
    );
    assert!(!line.contains("NOISY") && !line.contains("BAD"), "{line}");
    assert!(line.ends_with(" 1 %"), "{line}");

    let mut noisy = row(KEYS[1], Call::Cades, 100, 0.2);
    noisy.checked = Checked { kept: 4, ok: 3 };
    let line = row_line(&noisy, 0.05);
    assert!(line.starts_with("ECDSA P-256"), "{line}");
    assert!(line.contains(" cades ") && line.contains(" 3/4 "), "{line}");
    assert!(line.ends_with("  BAD  NOISY"), "{line}");
    noisy.checked = Checked::default();
    assert!(row_line(&noisy, 0.05).contains(" - "), "nothing checked");
}

#[test]
fn medians_per_configuration_with_the_verdict() {
    let rows = [
        row(KEYS[0], Call::SignHash(64), 6900, 0.0),
        row(KEYS[0], Call::SignHash(64), 6000, 0.0),
        row(KEYS[0], Call::SignHash(64), 7000, 0.0),
        row(KEYS[0], Call::SignHash(1), 5000, 0.0),
    ];
    let m = medians(rows.iter());
    assert_eq!(m.len(), 2);
    assert_eq!((m[0].rounds, m[0].rate, m[0].raw), (3, 690.0, 720.0));
    assert_eq!(
        median_line(&m[0]),
        "  RSA-3072 verify on signHash/64 clients 16: 3 round(s), 690.0 sig/s, raw 720.0, \
         ratio 0.958; target >= 0.95: met"
    );
    assert_eq!(
        median_line(&m[1]),
        "  RSA-3072 verify on signHash/1 clients 16: 1 round(s), 500.0 sig/s, raw 720.0, \
         ratio 0.694"
    );
    let low = [row(KEYS[0], Call::SignHash(64), 6000, 0.0)];
    assert!(median_line(&medians(low.iter())[0]).ends_with("target >= 0.95: MISSED"));
}
