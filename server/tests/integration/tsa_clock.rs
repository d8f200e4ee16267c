//! The clock guard at server level, in PRODUCTION mode (no `--dev`): a config over the
//! dev token and keys with `clock.source = "chrony"` and `clock.chronyc` pointing at a
//! script that prints whatever this test writes. Synchronised with a small error: tokens.
//! Not synchronised, an error above the 1 s accuracy, or a failing chronyc: replies are
//! timeNotAvailable (failInfo bit 14), /readyz is 503 naming the clock, and the log gets
//! no record; back in sync: tokens again. Then the kernel clock of this machine, which
//! says it is unsynchronised (docs/architecture.md): timeNotAvailable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;

use crate::common::tsp::{log_records, request_der, serial_hex, status_of, timestamp, token_of};
use crate::common::{Server, dev_init, hanko};

const TIME_NOT_AVAILABLE: usize = 14;
/// chronyc -c tracking: offset 10 us, root delay 2 ms, root dispersion 1 ms.
const SYNCED: &str = crate::common::CHRONYC_SYNCED;
pub(crate) const UNSYNCED: &str = "00000000,0.0.0.0,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n";
/// Synchronised, but root dispersion 1.5 s: beyond the declared 1 s accuracy.
const TOO_FAR: &str = "A29FC87B,162.159.200.123,3,1700000000.000000000,0.000010000,0.000002000,0.000010000,-5.000,0.001,0.020,0.002000000,1.500000000,64.0,Normal\n";

/// A production config over the dev token of `dir`, plus `extra` TOML.
pub(crate) fn production_config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let cfg = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .replace("dev = true", "dev = false");
    let cfg = format!("data_dir = {:?}\n{cfg}\n{extra}", dir.to_str().unwrap());
    let path = dir.join(name);
    std::fs::write(&path, cfg).unwrap();
    path
}

/// `hanko serve --config cfg` without `--dev`, with the dev PIN of `dir`.
pub(crate) fn start_production(dir: &Path, cfg: &Path) -> Server {
    let mut cmd = hanko();
    cmd.env("HANKO_PIN_FILE", dir.join("dev-pin"));
    Server::start(cmd, &["--config", cfg.to_str().unwrap()])
}

/// Waits (at most 15 s) until /readyz answers `want`; returns its body.
fn wait_readyz(server: &Server, want: u16) -> String {
    server.wait_readyz(want, Duration::from_secs(15)).1
}

fn stamp(server: &Server, i: u32) -> Vec<u8> {
    let req = request_der(
        HashAlgorithm::Sha256,
        format!("clock test {i}").as_bytes(),
        Some(u64::from(i) + 1),
        false,
        None,
    );
    timestamp(server.addr, &req)
}

/// A fake chronyc under `work` that prints the file `line` (starting synchronised),
/// or fails while the file `fail` exists, and a production config of `dir` over it:
/// (line, fail, config).
pub(crate) fn chrony_config(work: &Path, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let line = work.join("tracking.csv");
    let fail = work.join("fail");
    let script = work.join("fake-chronyc");
    std::fs::write(&line, SYNCED).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"-c tracking\" ] || exit 3\n\
             if [ -e {fail:?} ]; then echo '506 Cannot talk to daemon'; exit 1; fi\n\
             cat {line:?}\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = production_config(
        dir,
        "prod-chrony.toml",
        &format!(
            "[clock]\nsource = \"chrony\"\nchronyc = {:?}\npoll_ms = 50\nsettle_ms = 200\n",
            script.to_str().unwrap()
        ),
    );
    (line, fail, cfg)
}

#[test]
fn chrony_source_drives_issuance_and_the_kernel_clock_refuses_here() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);

    let (line, fail, cfg) = chrony_config(tmp.path(), &dir);

    let server = start_production(&dir, &cfg);
    wait_readyz(&server, 200);
    let mut granted = HashSet::new();
    let mut n = 0;
    let expect_granted = |server: &Server, granted: &mut HashSet<String>, n: &mut u32| {
        *n += 1;
        let (_, tst) = token_of(&stamp(server, *n));
        assert!(granted.insert(serial_hex(&tst.serial_number)));
    };
    for _ in 0..3 {
        expect_granted(&server, &mut granted, &mut n);
    }

    type Break<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Break); 3] = [
        (
            "not synchronised",
            Box::new(|| std::fs::write(&line, UNSYNCED).unwrap()),
        ),
        (
            "error above the accuracy",
            Box::new(|| std::fs::write(&line, TOO_FAR).unwrap()),
        ),
        (
            "chronyc fails",
            Box::new(|| std::fs::write(&fail, b"").unwrap()),
        ),
    ];
    for (what, break_it) in cases {
        break_it();
        let body = wait_readyz(&server, 503);
        assert!(body.contains("clock"), "{what}: {body}");
        for _ in 0..3 {
            n += 1;
            let (status, bits) = status_of(&stamp(&server, n));
            assert_eq!(status, PkiStatus::Rejection, "{what}");
            assert_eq!(bits, vec![TIME_NOT_AVAILABLE], "{what}");
        }
        // Back in sync: tokens resume.
        let _ = std::fs::remove_file(&fail);
        std::fs::write(&line, SYNCED).unwrap();
        wait_readyz(&server, 200);
        expect_granted(&server, &mut granted, &mut n);
    }
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    assert!(out.contains("clock source: chrony"), "{out}");
    assert!(out.contains("clock lost"), "{out}");
    assert!(out.contains("chronyc failed"), "{out}");
    assert!(!out.contains("DEVELOPMENT MODE"), "{out}");

    // Exactly the granted tokens are in the log: refusals left no record.
    let logged: HashSet<String> = log_records(&dir).into_iter().map(|(s, _)| s).collect();
    assert_eq!(logged, granted);

    // The kernel clock (the default source) in production on this machine.
    let cfg = production_config(&dir, "prod-kernel.toml", "[clock]\nsettle_ms = 200\n");
    let server = start_production(&dir, &cfg);
    use hanko_tsa::ClockSource as _;
    let kernel = hanko_server::clock::KernelClock::new().status();
    let kernel_ok = kernel.synchronised
        && kernel.est_error <= Duration::from_secs(1)
        && kernel.max_error <= Duration::from_secs(1);
    let resp = stamp(&server, 999);
    if kernel_ok {
        // A host whose kernel is disciplined: the default source issues.
        token_of(&resp);
    } else {
        let (status, bits) = status_of(&resp);
        assert_eq!(status, PkiStatus::Rejection);
        assert_eq!(bits, vec![TIME_NOT_AVAILABLE]);
        let body = wait_readyz(&server, 503);
        assert!(body.contains("clock"), "{body}");
    }
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
}
