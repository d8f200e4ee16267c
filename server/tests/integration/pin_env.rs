//! Issue #11: `HANKO_PIN` used to stay in the server's environment for its whole life and
//! was inherited by the `chronyc` child. Now `main` takes it out before any thread starts
//! (`Pin::take_from_env`), and every child is spawned without `HANKO_PIN` and
//! `HANKO_PIN_FILE` besides.
//!
//! What can be checked from outside, and is:
//! - the child: `clock.chronyc` is a script that dumps its environment to a file; neither
//!   variable, nor the PIN's value, is in it (while a marker variable of ours is, so the
//!   dump is the real inherited environment);
//! - Linux only, `/proc/<pid>/environ`: the kernel shows the environment block the
//!   process was started with, not its current `environ`, so removing the variable alone
//!   would leave the PIN readable there. `take_from_env` overwrites the value in that
//!   block with zero bytes first; the test asserts the PIN's bytes are gone from it (the
//!   name `HANKO_PIN=` itself may still be there, with an empty value).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{CHRONYC_SYNCED, Server, hanko, run, text};

/// A PIN value found nowhere else (`serve --dev` ignores it: the dev token's PIN is
/// `<data-dir>/dev-pin`).
const PIN: &str = "pin-7f3a9c1e-must-not-leak";

#[test]
fn hanko_pin_is_not_inherited_by_chronyc_nor_left_in_environ() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let out = run(&["dev-init", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out));

    let dump = tmp.path().join("chronyc.env");
    let script = tmp.path().join("fake-chronyc");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {dump:?}.tmp && mv {dump:?}.tmp {dump:?}\nprintf '{CHRONYC_SYNCED}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("hanko.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[clock]\nsource = \"chrony\"\nchronyc = {:?}\npoll_ms = 50\n",
        script.to_str().unwrap()
    ));
    std::fs::write(&config, toml).unwrap();
    let pin_file = tmp.path().join("pin-file");
    std::fs::write(&pin_file, PIN).unwrap();

    let mut cmd = hanko();
    cmd.env("HANKO_PIN", PIN)
        .env("HANKO_PIN_FILE", &pin_file)
        .env("HANKO_TEST_INHERITED", "yes");
    let server = Server::start(cmd, &["--dev", "--data-dir", d]);

    let env = wait_for(&dump);
    assert!(
        env.lines().any(|l| l == "HANKO_TEST_INHERITED=yes"),
        "the dump is not chronyc's inherited environment:\n{env}"
    );
    assert!(!env.contains(PIN), "the PIN reached chronyc:\n{env}");
    assert!(
        !env.contains("HANKO_PIN"),
        "a PIN variable reached chronyc:\n{env}"
    );

    #[cfg(target_os = "linux")]
    {
        let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).unwrap();
        assert!(
            !environ.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
            "the PIN is still readable in /proc/<pid>/environ"
        );
        // The block is the real one: the marker variable is still in it.
        let marker = b"HANKO_TEST_INHERITED=yes";
        assert!(environ.windows(marker.len()).any(|w| w == marker));
    }
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains(PIN), "{log}");
}

/// The file's text once it exists (the server starts chronyc at start-up).
fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(t) = std::fs::read_to_string(path) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
