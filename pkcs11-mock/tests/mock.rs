//! The mock module, loaded through cryptoki over a fresh SoftHSM token.
//!
//! One process, one PKCS#11 context: SoftHSM reads `SOFTHSM2_CONF` at
//! `C_Initialize`, and the mock reads `HANKO_MOCK_*` once, so `main` sets the
//! environment before any thread exists and then runs the scenarios in order
//! (this file is a `harness = false` test). Each scenario starts from an empty
//! control file; pass words on the command line to run only scenarios whose
//! name contains one of them (`cargo test -p hanko-pkcs11-mock --test mock -- unplug`).
//!
//! The real module behind the mock is `HANKO_TEST_PKCS11_MODULE`, SoftHSM
//! by default (`hanko_pkcs11_mock::module_under_test`).
//!
//! The module under test is `libhanko_pkcs11_mock.so` next to this test
//! binary's `deps/` directory: cargo builds the library's cdylib before the
//! integration test, so `cargo test -p hanko-pkcs11-mock` is enough.
//! `HANKO_MOCK_SO` overrides the path; if neither exists the test runs
//! `cargo build -p hanko-pkcs11-mock` itself.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; it runs in main before any thread starts"
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use hanko_pkcs11_mock::{Function, Kind, Stats, write_control};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

const LABEL: &str = "mock-test";
const KEY_LABEL: &str = "mock-key";
const PIN: &str = "user-pin-5678";

struct Fixture {
    _dir: tempfile::TempDir,
    so: PathBuf,
    control: PathBuf,
    stats: PathBuf,
    /// Replaced by the re-initialisation scenario.
    ctx: Mutex<Pkcs11>,
    slot: Mutex<Slot>,
    pin: String,
    public: VerifyingKey,
}

fn mock_so() -> PathBuf {
    hanko_pkcs11_mock::module_for_tests().unwrap()
}

fn init_context(so: &Path) -> Pkcs11 {
    let ctx = Pkcs11::new(so).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    ctx
}

fn find_slot(ctx: &Pkcs11) -> Slot {
    for slot in ctx.get_slots_with_initialized_token().unwrap() {
        if ctx.get_token_info(slot).unwrap().label() == LABEL {
            return slot;
        }
    }
    panic!("token {LABEL} not found");
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conf = hanko_pkcs11_mock::write_softhsm_config(dir.path()).unwrap();
        let control = dir.path().join("faults");
        // The token under test: HANKO_TEST_PKCS11_MODULE, SoftHSM by default.
        let real_module = hanko_pkcs11_mock::module_under_test();
        // SAFETY: main calls this before starting any thread (this binary is
        // `harness = false`, so nothing else runs yet); SoftHSM and the mock read
        // these once, at C_Initialize.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
            std::env::set_var("HANKO_MOCK_REAL_MODULE", &real_module);
            std::env::set_var("HANKO_MOCK_CONTROL", &control);
            std::env::remove_var("HANKO_MOCK_STATS");
        }
        let so = mock_so();
        let ctx = init_context(&so);
        let so_pin = AuthPin::from("so-pin-1234");
        let pin = PIN.to_owned();
        let free = ctx.get_slots_with_token().unwrap()[0];
        ctx.init_token(free, &so_pin, LABEL).unwrap();
        let slot = find_slot(&ctx);
        {
            let s = ctx.open_rw_session(slot).unwrap();
            s.login(UserType::So, Some(&so_pin)).unwrap();
            s.init_pin(&AuthPin::from(pin.as_str())).unwrap();
            s.logout().unwrap();
        }
        let s = ctx.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&AuthPin::from(pin.as_str())))
            .unwrap();
        // P-256: OID 1.2.840.10045.3.1.7
        let params = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let (public_handle, _private) = s
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Verify(true),
                    Attribute::EcParams(params),
                    Attribute::Label(KEY_LABEL.into()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                    Attribute::Label(KEY_LABEL.into()),
                ],
            )
            .unwrap();
        let point = match &s
            .get_attributes(public_handle, &[AttributeType::EcPoint])
            .unwrap()[0]
        {
            Attribute::EcPoint(p) => p.clone(),
            other => panic!("unexpected {other:?}"),
        };
        // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point.
        assert_eq!(&point[..2], &[0x04, 0x41]);
        let public = VerifyingKey::from_sec1_bytes(&point[2..]).unwrap();
        drop(s);
        let stats = Stats::path_for(&control);
        Fixture {
            _dir: dir,
            so,
            control,
            stats,
            ctx: Mutex::new(ctx),
            slot: Mutex::new(slot),
            pin,
            public,
        }
    }

    fn ctx(&self) -> Pkcs11 {
        self.ctx.lock().unwrap().clone()
    }

    fn slot(&self) -> Slot {
        *self.slot.lock().unwrap()
    }

    /// The private key's handle in this session. SoftHSM drops the handles
    /// of private objects when the token is logged out (last session closed),
    /// so a handle is only good while some session stays logged in.
    fn key(&self, s: &Session) -> ObjectHandle {
        let found = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(KEY_LABEL.into()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1);
        found[0]
    }

    fn faults(&self, text: &str) {
        write_control(&self.control, text).unwrap();
    }

    fn login(&self, s: &Session) -> Result<(), CkError> {
        match s.login(UserType::User, Some(&AuthPin::from(self.pin.as_str()))) {
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            other => other,
        }
    }

    /// A fresh logged-in session.
    fn session(&self) -> Session {
        let s = self.ctx().open_rw_session(self.slot()).unwrap();
        self.login(&s).unwrap();
        s
    }

    /// ECDSA P-256 over SHA-256(msg), hashed here (SoftHSM offers raw ECDSA).
    fn sign(&self, s: &Session, msg: &[u8]) -> Result<Vec<u8>, CkError> {
        sign_with(s, self.key(s), msg)
    }

    fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        Signature::from_slice(sig)
            .map(|sig| self.public.verify(msg, &sig).is_ok())
            .unwrap_or(false)
    }

    fn stats(&self) -> Stats {
        Stats::read(&self.stats).unwrap()
    }
}

/// Signs with a key handle found earlier (no C_FindObjects on the way).
fn sign_with(s: &Session, key: ObjectHandle, msg: &[u8]) -> Result<Vec<u8>, CkError> {
    s.sign(&Mechanism::Ecdsa, key, &Sha256::digest(msg))
}

fn rv(r: Result<impl Sized, CkError>) -> Option<RvError> {
    match r {
        Ok(_) => None,
        Err(CkError::Pkcs11(rv, _)) => Some(rv),
        Err(e) => panic!("not a PKCS#11 error: {e}"),
    }
}

/// Counter growth between two stats snapshots.
fn grew(before: &Stats, after: &Stats, f: Function, kind: Kind) -> u64 {
    after.of(f, kind) - before.of(f, kind)
}

// ---------------------------------------------------------------------------
// Scenarios

fn pass_through_signing_verifies(fx: &Fixture) {
    let before = fx.stats();
    let s = fx.session();
    for i in 0..5u8 {
        let msg = [i; 40];
        let sig = fx.sign(&s, &msg).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(fx.verifies(&msg, &sig));
        assert!(!fx.verifies(b"other message", &sig));
    }
    assert_eq!(fx.stats(), before, "nothing injected");
    let info = fx.ctx().get_library_info().unwrap();
    assert!(info.library_description().starts_with("hanko-pkcs11-mock"));
    let _ = fx.key(&s);
}

fn nth_fails_only_the_nth_call_and_the_session_recovers(fx: &Fixture) {
    fx.faults("fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=nth n=3 phase=data\n");
    let s = fx.session();
    let got: Vec<Option<RvError>> = (0..6).map(|i| rv(fx.sign(&s, &[i; 8]))).collect();
    let mut want = vec![None; 6];
    want[2] = Some(RvError::DeviceError);
    assert_eq!(got, want);

    // A fault on the length query: the mock ends SoftHSM's operation too, so
    // the next C_SignInit on the same session succeeds.
    fx.faults("fault fn=C_Sign rv=CKR_GENERAL_ERROR mode=nth n=1 phase=query\n");
    assert_eq!(rv(fx.sign(&s, b"q")), Some(RvError::GeneralError));
    let sig = fx.sign(&s, b"q").unwrap();
    assert!(fx.verifies(b"q", &sig));

    // Without phase=, the length query counts: nth n=2 is the first
    // signature's data call.
    fx.faults("fault fn=C_Sign rv=CKR_FUNCTION_FAILED mode=nth n=2\n");
    assert_eq!(rv(fx.sign(&s, b"x")), Some(RvError::FunctionFailed));
    assert!(fx.sign(&s, b"x").is_ok());
}

fn every_fails_each_nth_call(fx: &Fixture) {
    fx.faults("fault fn=C_SignInit rv=CKR_DEVICE_ERROR mode=every n=3\n");
    let s = fx.session();
    let failed: Vec<usize> = (0..9)
        .filter(|i| fx.sign(&s, &[*i as u8]).is_err())
        .collect();
    assert_eq!(failed, vec![2, 5, 8]);
}

fn after_fails_for_good(fx: &Fixture) {
    fx.faults("fault fn=C_SignInit rv=CKR_DEVICE_ERROR mode=after n=2\n");
    let s = fx.session();
    let ok: Vec<bool> = (0..5).map(|i| fx.sign(&s, &[i]).is_ok()).collect();
    assert_eq!(ok, vec![true, false, false, false, false]);
}

fn probability_is_close_to_p(fx: &Fixture) {
    fx.faults("seed 11\nfault fn=C_GenerateRandom rv=CKR_DEVICE_ERROR mode=prob p=0.2\n");
    let before = fx.stats();
    let s = fx.session();
    let n = 2000;
    let failed = (0..n)
        .filter(|_| s.generate_random_vec(16).is_err())
        .count() as u64;
    // mean 400, sd ~18: a window of about +-5.5 sd
    assert!((300..=500).contains(&failed), "{failed} of {n}");
    let after = fx.stats();
    assert_eq!(
        grew(&before, &after, Function::C_GenerateRandom, Kind::Fault),
        failed
    );
}

fn always_returns_each_listed_rv(fx: &Fixture) {
    let table = [
        ("CKR_DEVICE_ERROR", RvError::DeviceError),
        ("CKR_DEVICE_REMOVED", RvError::DeviceRemoved),
        ("CKR_TOKEN_NOT_PRESENT", RvError::TokenNotPresent),
        ("CKR_SESSION_HANDLE_INVALID", RvError::SessionHandleInvalid),
        ("CKR_GENERAL_ERROR", RvError::GeneralError),
        ("CKR_FUNCTION_FAILED", RvError::FunctionFailed),
    ];
    let s = fx.session();
    for (name, want) in table {
        fx.faults(&format!("fault fn=C_Sign rv={name} mode=always\n"));
        for _ in 0..3 {
            assert_eq!(rv(fx.sign(&s, b"m")), Some(want), "{name}");
        }
        fx.faults("");
        let sig = fx.sign(&s, b"m").unwrap();
        assert!(fx.verifies(b"m", &sig), "after {name}");
    }
}

fn delay_adds_latency(fx: &Fixture) {
    let s = fx.session();
    let t = Instant::now();
    fx.sign(&s, b"fast").unwrap();
    let base = t.elapsed();
    fx.faults("delay fn=C_SignInit ms=300\n");
    let t = Instant::now();
    let sig = fx.sign(&s, b"slow").unwrap();
    let slow = t.elapsed();
    assert!(fx.verifies(b"slow", &sig));
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    assert!(
        slow >= base + Duration::from_millis(250),
        "{base:?} {slow:?}"
    );
}

/// Signs once on each of `n` sessions at the same time; returns the wall time of all.
fn sign_in_parallel(fx: &Fixture, n: usize) -> Duration {
    let sessions: Vec<Session> = (0..n).map(|_| fx.session()).collect();
    let keys: Vec<ObjectHandle> = sessions.iter().map(|s| fx.key(s)).collect();
    let t = Instant::now();
    let workers: Vec<_> = sessions
        .into_iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (s, key))| {
            std::thread::spawn(move || {
                let msg = format!("parallel {i}");
                let sig = sign_with(&s, key, msg.as_bytes()).unwrap();
                (msg, sig, s)
            })
        })
        .collect();
    for w in workers {
        let (msg, sig, _s) = w.join().unwrap();
        assert!(fx.verifies(msg.as_bytes(), &sig));
    }
    t.elapsed()
}

/// A simulated network HSM: each data call of C_Sign takes the delay, the length
/// query none, and at most `max` run at once.
fn capacity_limits_calls_in_flight(fx: &Fixture) {
    fx.faults("delay fn=C_Sign ms=100 phase=data\n");
    let s = fx.session();
    let t = Instant::now();
    fx.sign(&s, b"one").unwrap();
    let one = t.elapsed();
    assert!(
        one >= Duration::from_millis(100) && one < Duration::from_millis(190),
        "the length query is not delayed: {one:?}"
    );
    // Unlimited: six at once take about one delay.
    let free = sign_in_parallel(fx, 6);
    assert!(free < Duration::from_millis(290), "{free:?}");
    // Two at a time: three rounds.
    fx.faults("delay fn=C_Sign ms=100 phase=data\ncapacity fn=C_Sign max=2 phase=data\n");
    let limited = sign_in_parallel(fx, 6);
    assert!(limited >= Duration::from_millis(300), "{limited:?}");
    assert!(limited < Duration::from_millis(900), "{limited:?}");
    fx.faults("");
}

fn hang_blocks_until_released(fx: &Fixture) {
    fx.faults("hang fn=C_SignInit max_ms=20000\n");
    let s = fx.session();
    let key = fx.key(&s);
    let t = Instant::now();
    let worker = std::thread::spawn(move || {
        let r = s.sign(&Mechanism::Ecdsa, key, &Sha256::digest(b"hung"));
        (r, s)
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(!worker.is_finished(), "the call should still hang");
    fx.faults("");
    let released = Instant::now();
    while !worker.is_finished() {
        assert!(
            released.elapsed() < Duration::from_secs(5),
            "not released within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (r, s) = worker.join().unwrap();
    assert!(fx.verifies(b"hung", &r.unwrap()));
    assert!(t.elapsed() >= Duration::from_millis(400));

    // max_ms bounds a hang nobody releases.
    fx.faults("hang fn=C_SignInit max_ms=250\n");
    let t = Instant::now();
    fx.sign(&s, b"bounded").unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));
}

fn corrupt_flips_one_bit(fx: &Fixture) {
    let before = fx.stats();
    // nth n=1: the length query is not counted, so this is the first signature.
    fx.faults("corrupt fn=C_Sign mode=nth n=1\n");
    let s = fx.session();
    let bad = fx.sign(&s, b"fault attack").unwrap();
    assert_eq!(bad.len(), 64);
    assert!(!fx.verifies(b"fault attack", &bad));
    let good = fx.sign(&s, b"fault attack").unwrap();
    assert!(fx.verifies(b"fault attack", &good));
    assert_eq!(
        grew(&before, &fx.stats(), Function::C_Sign, Kind::Corrupt),
        1
    );

    // A chosen bit: bit 511 is the last bit of s (byte 63, mask 0x01).
    // Flipping it back must give a valid signature: exactly that bit moved.
    fx.faults("corrupt fn=C_Sign bit=511\n");
    let bad = fx.sign(&s, b"m2").unwrap();
    let mut fixed = bad.clone();
    fixed[63] ^= 0x01;
    assert!(!fx.verifies(b"m2", &bad));
    assert!(fx.verifies(b"m2", &fixed), "exactly bit 511 was flipped");
}

fn unplug_then_replug(fx: &Fixture) {
    let before = fx.stats();
    let old = fx.session();
    let key = fx.key(&old);
    sign_with(&old, key, b"before").unwrap();
    fx.faults("unplug\n");
    assert_eq!(
        rv(sign_with(&old, key, b"gone")),
        Some(RvError::DeviceRemoved)
    );
    assert_eq!(rv(old.get_session_info()), Some(RvError::DeviceRemoved));
    let ctx = fx.ctx();
    assert_eq!(
        rv(ctx.open_rw_session(fx.slot())),
        Some(RvError::TokenNotPresent)
    );
    assert_eq!(
        rv(ctx.get_token_info(fx.slot())),
        Some(RvError::TokenNotPresent)
    );
    assert!(ctx.get_slots_with_token().unwrap().is_empty());
    assert!(!ctx.get_all_slots().unwrap().is_empty());
    assert!(!ctx.get_slot_info(fx.slot()).unwrap().token_present());

    fx.faults("");
    // Handles from before the unplug stay invalid, like a replugged device.
    assert_eq!(
        rv(sign_with(&old, key, b"stale")),
        Some(RvError::SessionHandleInvalid)
    );
    assert_eq!(
        rv(old.get_session_info()),
        Some(RvError::SessionHandleInvalid)
    );
    // The real sessions were closed, so the login is gone too.
    let new = ctx.open_rw_session(fx.slot()).unwrap();
    let hidden = new
        .find_objects(&[Attribute::Label(KEY_LABEL.into())])
        .unwrap();
    assert_eq!(
        hidden.len(),
        1,
        "only the public key is visible before login"
    );
    // ... and SoftHSM dropped the private key's handle with the login:
    // clients must find their keys again after a replug.
    assert_eq!(
        rv(sign_with(&new, key, b"x")),
        Some(RvError::ObjectHandleInvalid)
    );
    fx.login(&new).unwrap();
    let sig = fx.sign(&new, b"after").unwrap();
    assert!(fx.verifies(b"after", &sig));
    drop(old); // C_CloseSession on a stale handle: CKR_SESSION_HANDLE_INVALID, ignored

    let after = fx.stats();
    assert_eq!(grew(&before, &after, Function::C_SignInit, Kind::Unplug), 1);
    assert_eq!(
        grew(&before, &after, Function::C_GetSessionInfo, Kind::Unplug),
        1
    );
    assert_eq!(
        grew(&before, &after, Function::C_OpenSession, Kind::Unplug),
        1
    );
    assert_eq!(grew(&before, &after, Function::C_SignInit, Kind::Stale), 1);
    assert_eq!(
        grew(&before, &after, Function::C_GetSessionInfo, Kind::Stale),
        1
    );
}

fn control_file_is_reread_live(fx: &Fixture) {
    let s = fx.session();
    // Two same-size rewrites in quick succession (same mtime tick, same
    // length): the mock must still see the second.
    fx.faults("fault fn=C_SignInit rv=0x30\n");
    assert_eq!(rv(fx.sign(&s, b"a")), Some(RvError::DeviceError));
    fx.faults("fault fn=C_SignInit rv=0x32\n");
    assert_eq!(rv(fx.sign(&s, b"a")), Some(RvError::DeviceRemoved));
    // Plain in-place truncate-and-write also works.
    std::fs::write(&fx.control, "fault fn=C_SignInit rv=CKR_GENERAL_ERROR\n").unwrap();
    assert_eq!(rv(fx.sign(&s, b"a")), Some(RvError::GeneralError));
    std::fs::remove_file(&fx.control).unwrap();
    assert!(fx.sign(&s, b"a").is_ok(), "missing file = pass-through");
}

fn bad_lines_are_ignored(fx: &Fixture) {
    fx.faults(
        "this is not a rule\n\
         fault fn=C_Sgn rv=CKR_DEVICE_ERROR\n\
         fault fn=C_SignInit rv=CKR_DEVICE_MEMORY\n",
    );
    let s = fx.session();
    assert_eq!(rv(fx.sign(&s, b"a")), Some(RvError::DeviceMemory));
}

fn multipart_fault_ends_the_operation(fx: &Fixture) {
    // SoftHSM 2.6 has no hash-and-sign ECDSA, so the update path is shown
    // with a digest: C_DigestUpdate fails, and the mock ends SoftHSM's
    // operation (through C_DigestFinal) so C_DigestInit works again.
    let s = fx.session();
    let sha256 = Mechanism::Sha256;
    fx.faults("fault fn=C_DigestUpdate rv=CKR_DEVICE_ERROR mode=nth n=1\n");
    s.digest_init(&sha256).unwrap();
    assert_eq!(rv(s.digest_update(b"part")), Some(RvError::DeviceError));
    s.digest_init(&sha256).unwrap();
    s.digest_update(b"part").unwrap();
    assert_eq!(s.digest_final().unwrap(), Sha256::digest(b"part").to_vec());

    // Same for a fault on the final call itself.
    fx.faults("fault fn=C_DigestFinal rv=CKR_DEVICE_ERROR mode=nth n=1 phase=data\n");
    s.digest_init(&sha256).unwrap();
    s.digest_update(b"part").unwrap();
    assert_eq!(rv(s.digest_final()), Some(RvError::DeviceError));
    assert_eq!(
        s.digest(&sha256, b"x").unwrap(),
        Sha256::digest(b"x").to_vec()
    );

    // And a control: without the mock ending it, SoftHSM keeps an operation
    // that failed on the client side active (here: one never finished).
    fx.faults("");
    s.digest_init(&sha256).unwrap();
    assert_eq!(rv(s.digest_init(&sha256)), Some(RvError::OperationActive));
}

fn stats_add_up_under_mixed_faults(fx: &Fixture) {
    fx.faults(
        "seed 5\n\
         fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=prob p=0.1 phase=data\n\
         fault fn=C_SignInit rv=CKR_FUNCTION_FAILED mode=every n=7\n\
         corrupt fn=C_Sign mode=every n=11\n",
    );
    let before = fx.stats();
    let s = fx.session();
    let (mut device, mut failed, mut bad, mut good) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..300u32 {
        let msg = i.to_be_bytes();
        match fx.sign(&s, &msg) {
            Ok(sig) if fx.verifies(&msg, &sig) => good += 1,
            Ok(_) => bad += 1,
            Err(CkError::Pkcs11(RvError::DeviceError, _)) => device += 1,
            Err(CkError::Pkcs11(RvError::FunctionFailed, _)) => failed += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let after = fx.stats();
    assert_eq!(device + failed + bad + good, 300);
    assert!(device > 0 && failed > 0 && bad > 0);
    assert_eq!(grew(&before, &after, Function::C_Sign, Kind::Fault), device);
    assert_eq!(
        grew(&before, &after, Function::C_SignInit, Kind::Fault),
        failed
    );
    assert_eq!(failed, 300 / 7);
    assert_eq!(grew(&before, &after, Function::C_Sign, Kind::Corrupt), bad);
    assert_eq!(after.pid, std::process::id());
}

fn reinitialise_after_unplug(fx: &Fixture) {
    // What a client does on CKR_DEVICE_REMOVED: finalize, initialize, find the
    // token and key again, log in.
    let before = fx.stats();
    let s = fx.session();
    let key = fx.key(&s);
    fx.faults("unplug\n");
    assert_eq!(rv(sign_with(&s, key, b"x")), Some(RvError::DeviceRemoved));
    drop(s);
    let old = fx.ctx();
    fx.ctx().finalize().unwrap();
    drop(old);
    fx.faults("");
    let ctx = init_context(&fx.so);
    let slot = find_slot(&ctx);
    *fx.ctx.lock().unwrap() = ctx;
    *fx.slot.lock().unwrap() = slot;
    let s = fx.session();
    let sig = fx.sign(&s, b"again").unwrap();
    assert!(fx.verifies(b"again", &sig));
    // Counting goes on across the re-initialisation (same process).
    assert!(
        fx.stats().of(Function::C_SignInit, Kind::Unplug)
            > before.of(Function::C_SignInit, Kind::Unplug)
    );
}

fn concurrent_signers_survive_unplug_cycles(fx: &Fixture) {
    // Four workers, each with its own session, sign in a loop and recover
    // the way hanko-hsm does (new session, log in, find the key) while the
    // token is pulled three times. Every signature must verify; every error
    // must be one a device loss explains.
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let before = fx.stats();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u32)
            .map(|w| {
                let stop = &stop;
                scope.spawn(move || {
                    let (mut ok, mut errors) = (0u64, Vec::new());
                    let mut session: Option<(Session, ObjectHandle)> = None;
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let msg = [w.to_be_bytes(), i.to_be_bytes()].concat();
                        let step = match &session {
                            Some((s, key)) => sign_with(s, *key, &msg).map(|sig| {
                                assert!(fx.verifies(&msg, &sig), "bad signature");
                                ok += 1;
                            }),
                            None => fx.ctx().open_rw_session(fx.slot()).and_then(|s| {
                                fx.login(&s)?;
                                let key = s.find_objects(&[
                                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                                    Attribute::Label(KEY_LABEL.into()),
                                ])?;
                                if let Some(k) = key.first() {
                                    session = Some((s, *k));
                                }
                                Ok(())
                            }),
                        };
                        if let Err(e) = step {
                            session = None;
                            errors.push(rv(Err::<(), _>(e)));
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    // After the last replug: one more signature must work.
                    let s = fx.session();
                    let sig = fx.sign(&s, b"final").unwrap();
                    assert!(fx.verifies(b"final", &sig));
                    (ok, errors)
                })
            })
            .collect();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(150));
            let seen = fx.stats().total(Kind::Unplug);
            fx.faults("unplug\n");
            let t = Instant::now();
            while fx.stats().total(Kind::Unplug) == seen {
                assert!(t.elapsed() < Duration::from_secs(5), "unplug never noticed");
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(100));
            fx.faults("");
        }
        std::thread::sleep(Duration::from_millis(150));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let (ok, errors) = w.join().unwrap();
            assert!(ok > 0);
            for e in errors {
                assert!(
                    matches!(
                        e,
                        Some(
                            RvError::DeviceRemoved
                                | RvError::TokenNotPresent
                                | RvError::SessionHandleInvalid
                                | RvError::ObjectHandleInvalid
                                | RvError::KeyHandleInvalid
                                | RvError::UserNotLoggedIn
                        )
                    ),
                    "unexpected {e:?}"
                );
            }
        }
    });
    assert!(fx.stats().total(Kind::Unplug) > before.total(Kind::Unplug));
}

/// Runs this binary again with `HANKO_MOCK_TEST_CHILD=<case>` and an
/// environment of the case's choosing; returns (success, stdout+stderr).
fn child(case: &str, env: &[(&str, &std::ffi::OsStr)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("HANKO_MOCK_TEST_CHILD", case);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The child side: load the mock with the inherited environment and report.
fn child_main(case: &str) {
    let so = mock_so();
    match case {
        // Must fail cleanly (an error, not a crash).
        "load-fails" => match Pkcs11::new(&so) {
            Ok(_) => println!("loaded"),
            Err(e) => println!("load error: {e}"),
        },
        // No HANKO_MOCK_CONTROL: pure pass-through to the token.
        "pass-through" => {
            let ctx = init_context(&so);
            let slot = find_slot(&ctx);
            let s = ctx.open_rw_session(slot).unwrap();
            s.login(UserType::User, Some(&AuthPin::from(PIN))).unwrap();
            let digest = s.digest(&Mechanism::Sha256, b"abc").unwrap();
            assert_eq!(digest, Sha256::digest(b"abc").to_vec());
            println!("pass-through ok");
        }
        other => panic!("unknown child case {other}"),
    }
}

fn misconfiguration_fails_cleanly_and_no_control_is_pass_through(fx: &Fixture) {
    let bogus = std::ffi::OsStr::new("/nonexistent/libnothing.so");
    let (ok, text) = child("load-fails", &[("HANKO_MOCK_REAL_MODULE", bogus)]);
    assert!(ok, "{text}");
    assert!(
        text.contains("cannot load real module /nonexistent/libnothing.so"),
        "{text}"
    );
    assert!(text.contains("load error"), "{text}");

    // The real module is the mock itself: refused, not an endless recursion.
    let (ok, text) = child(
        "load-fails",
        &[("HANKO_MOCK_REAL_MODULE", fx.so.as_os_str())],
    );
    assert!(ok, "{text}");
    assert!(text.contains("load error"), "{text}");
    assert!(text.contains("point at the mock itself"), "{text}");

    // A control file that demands failure, but the child has no
    // HANKO_MOCK_CONTROL: nothing is injected.
    fx.faults("fault fn=* rv=CKR_DEVICE_ERROR\n");
    let empty = std::ffi::OsStr::new("");
    let (ok, text) = child("pass-through", &[("HANKO_MOCK_CONTROL", empty)]);
    assert!(ok, "{text}");
    assert!(text.contains("pass-through ok"), "{text}");
}

type Scenario = (&'static str, fn(&Fixture));

const SCENARIOS: &[Scenario] = &[
    (
        "pass_through_signing_verifies",
        pass_through_signing_verifies,
    ),
    (
        "nth_fails_only_the_nth_call_and_the_session_recovers",
        nth_fails_only_the_nth_call_and_the_session_recovers,
    ),
    ("every_fails_each_nth_call", every_fails_each_nth_call),
    ("after_fails_for_good", after_fails_for_good),
    ("probability_is_close_to_p", probability_is_close_to_p),
    (
        "always_returns_each_listed_rv",
        always_returns_each_listed_rv,
    ),
    ("delay_adds_latency", delay_adds_latency),
    (
        "capacity_limits_calls_in_flight",
        capacity_limits_calls_in_flight,
    ),
    ("hang_blocks_until_released", hang_blocks_until_released),
    ("corrupt_flips_one_bit", corrupt_flips_one_bit),
    ("unplug_then_replug", unplug_then_replug),
    ("control_file_is_reread_live", control_file_is_reread_live),
    ("bad_lines_are_ignored", bad_lines_are_ignored),
    (
        "multipart_fault_ends_the_operation",
        multipart_fault_ends_the_operation,
    ),
    (
        "stats_add_up_under_mixed_faults",
        stats_add_up_under_mixed_faults,
    ),
    (
        "concurrent_signers_survive_unplug_cycles",
        concurrent_signers_survive_unplug_cycles,
    ),
    (
        "misconfiguration_fails_cleanly_and_no_control_is_pass_through",
        misconfiguration_fails_cleanly_and_no_control_is_pass_through,
    ),
    ("reinitialise_after_unplug", reinitialise_after_unplug),
];

fn main() {
    if let Ok(case) = std::env::var("HANKO_MOCK_TEST_CHILD") {
        child_main(&case);
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in SCENARIOS {
            println!("{name}: test");
        }
        return;
    }
    let fx = Fixture::new();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, scenario) in SCENARIOS {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        fx.faults("");
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| scenario(&fx)));
        fx.faults("");
        match result {
            Ok(()) => println!("test {name} ... ok ({:?})", t.elapsed()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(1);
    }
}
