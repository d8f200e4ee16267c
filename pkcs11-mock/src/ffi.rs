//! The PKCS#11 face of the module: `C_GetFunctionList` and the 68 functions
//! of the v2.40 list, each asking the engine what to do and then forwarding
//! to the real module.
//!
//! Every entry point runs inside [`guard`], which catches panics (a panic must
//! never unwind into the C host) and turns them into `CKR_GENERAL_ERROR`.
//! Real calls run outside the engine's lock, under a read lock on [`DEVICE`];
//! an unplug takes the write lock before closing the real sessions, so it
//! never pulls a session out from under a call in flight.
//!
//! When a fault fires on a call that belongs to an operation (`C_Sign`,
//! `C_SignUpdate`, `C_Encrypt`, ...), the real operation is ended too (by
//! running it to completion into a scratch buffer, or by calling its
//! `*Final`), because a real device that fails an operation also ends it: a
//! client that retries `C_SignInit` on the same session must not get
//! `CKR_OPERATION_ACTIVE` from SoftHSM's leftover state.
//!
//! Only `C_GetFunctionList` is exported by name: exporting `C_Sign` & co.
//! could let the real module's own internal calls bind to ours if a host
//! loaded us with `RTLD_GLOBAL`. Hosts that `dlsym` each function are not
//! supported; cryptoki, p11-kit, OpenSSL and pkcs11-tool all use the list.

#![allow(
    non_snake_case,
    reason = "the entry points carry their PKCS#11 names, so one identifier names the function, the list field and the control-file function"
)]

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::{Condvar, LazyLock, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use cryptoki_sys::*;

use crate::control::Function;
use crate::engine::{Admit, CallPhase, Engine};

/// The module loaded when neither `HANKO_MOCK_REAL_MODULE` nor
/// `HANKO_TEST_PKCS11_MODULE` is set (see [`crate::module_under_test`]).
pub const DEFAULT_REAL_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// How often a hung call re-reads the control file to see if it is released.
const HANG_POLL: Duration = Duration::from_millis(20);

/// Largest scratch buffer used to run a failed operation to its end.
const MAX_SCRATCH: CK_ULONG = 1 << 24;

static ENGINE: LazyLock<Mutex<Engine>> = LazyLock::new(|| Mutex::new(Engine::from_env()));

/// Read-held by real calls, write-held while an unplug closes real sessions.
static DEVICE: RwLock<()> = RwLock::new(());

struct Real {
    /// Kept for the life of the process: the list points into it.
    _lib: libloading::Library,
    list: CK_FUNCTION_LIST,
}

static REAL: OnceLock<Result<Real, String>> = OnceLock::new();

thread_local! {
    /// Set while this thread loads the real module, to catch a
    /// `HANKO_MOCK_REAL_MODULE` that points back at the mock.
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

fn load_real() -> Result<Real, String> {
    let path = std::env::var_os("HANKO_MOCK_REAL_MODULE")
        .filter(|p| !p.is_empty())
        .map_or_else(crate::module_under_test, std::path::PathBuf::from);
    let shown = path.to_string_lossy().into_owned();
    // SAFETY: loading a shared library runs its initialisers. The path is the
    // PKCS#11 module the operator named for this purpose; loading it is what
    // this test module exists to do. RTLD_LOCAL keeps its symbols (and ours)
    // from interposing on each other.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(&path),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
        )
    }
    .map_err(|e| format!("cannot load real module {shown}: {e}"))?;
    let lib: libloading::Library = lib.into();
    let mut list_ptr: *mut CK_FUNCTION_LIST = ptr::null_mut();
    let rv = {
        // SAFETY: every PKCS#11 version declares C_GetFunctionList with this
        // signature (pkcs11f.h); the symbol does not outlive `lib`.
        let get = unsafe {
            lib.get::<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV>(
                b"C_GetFunctionList\0",
            )
        }
        .map_err(|e| format!("{shown} has no C_GetFunctionList: {e}"))?;
        // SAFETY: the argument is a valid place for the list pointer.
        unsafe { get(&mut list_ptr) }
    };
    if rv != CKR_OK || list_ptr.is_null() {
        return Err(format!(
            "{shown}: C_GetFunctionList returned 0x{rv:x} (does HANKO_MOCK_REAL_MODULE point at the mock itself?)"
        ));
    }
    // SAFETY: on CKR_OK the module has stored a pointer to its function list,
    // which lives as long as the library, which we never unload. The list is
    // plain data (a version and function pointers), so a copy is as good.
    let list = unsafe { *list_ptr };
    Ok(Real { _lib: lib, list })
}

/// The real module's function list, loading it on first use.
fn real() -> Result<&'static CK_FUNCTION_LIST, CK_RV> {
    if LOADING.with(Cell::get) {
        return Err(CKR_GENERAL_ERROR);
    }
    let loaded = REAL.get_or_init(|| {
        LOADING.with(|l| l.set(true));
        let r = load_real();
        LOADING.with(|l| l.set(false));
        if let Err(e) = &r {
            eprintln!("hanko-pkcs11-mock: {e}");
        }
        r
    });
    match loaded {
        Ok(r) => Ok(&r.list),
        Err(_) => Err(CKR_GENERAL_ERROR),
    }
}

/// Runs `f` on the engine, then closes any real sessions an unplug queued.
fn with_engine<T>(f: impl FnOnce(&mut Engine) -> T) -> T {
    let (out, close) = engine_only(f);
    close_real_sessions(close);
    out
}

/// Runs `f` on the engine and hands back the slots an unplug queued for
/// closing, without closing them (the caller may hold the device read lock).
fn engine_only<T>(f: impl FnOnce(&mut Engine) -> T) -> (T, Vec<CK_SLOT_ID>) {
    let mut e = ENGINE.lock().unwrap_or_else(PoisonError::into_inner);
    let out = f(&mut e);
    (out, std::mem::take(&mut e.pending_close))
}

/// Closes the real sessions of these slots, once no real call is in flight.
/// The caller must not hold the device lock.
fn close_real_sessions(slots: Vec<CK_SLOT_ID>) {
    if slots.is_empty() {
        return;
    }
    if let Ok(list) = real()
        && let Some(close_all) = list.C_CloseAllSessions
    {
        let _device = DEVICE.write().unwrap_or_else(PoisonError::into_inner);
        for slot in slots {
            // SAFETY: a plain call into the real module with a slot id it gave us.
            let _ = unsafe { close_all(slot) };
        }
    }
}

/// Catches panics at the FFI boundary.
fn guard(f: impl FnOnce() -> CK_RV) -> CK_RV {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(CKR_GENERAL_ERROR)
}

/// What a forwarding closure gets.
#[derive(Clone, Copy)]
struct Ctx {
    /// The real session handle (0 for functions without one).
    session: CK_SESSION_HANDLE,
    /// The token is unplugged (only `C_GetSlotList`/`C_GetSlotInfo` see this).
    token_absent: bool,
}

/// The calls in flight under each `capacity` rule, by rule key.
static IN_FLIGHT: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// Wakes the calls waiting for a slot.
static SLOT_FREED: Condvar = Condvar::new();
/// How often a waiting call looks whether its `capacity` line is still there.
const SLOT_POLL: Duration = Duration::from_millis(20);

/// A slot under a `capacity` rule, held from the delay to the end of the real call.
struct Slot(Option<String>);

impl Slot {
    /// Waits for a slot of the `capacity` rule that limits this call, if one does;
    /// gives up waiting (and runs unlimited) once the rule's line is gone.
    fn take(f: Function, phase: CallPhase) -> Slot {
        let Some((key, max)) = with_engine(|e| e.capacity(f, phase)) else {
            return Slot(None);
        };
        let mut map = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let n = map
                .get_or_insert_with(HashMap::new)
                .entry(key.clone())
                .or_insert(0);
            if *n < max {
                *n += 1;
                return Slot(Some(key));
            }
            map = SLOT_FREED
                .wait_timeout(map, SLOT_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            drop(map);
            let gone = with_engine(|e| {
                e.refresh();
                !e.has_rule(&key)
            });
            if gone {
                return Slot(None);
            }
            map = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(key) = self.0.take() else { return };
        let mut map = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.as_mut().and_then(|m| m.get_mut(&key)) {
            *n = n.saturating_sub(1);
        }
        drop(map);
        SLOT_FREED.notify_all();
    }
}

/// Sleeps the delays and waits out the hang the engine chose for this call.
fn wait_latency(f: Function, phase: CallPhase) {
    let (delay, hang) = with_engine(|e| e.latency(f, phase));
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    if let Some(h) = hang {
        let start = Instant::now();
        loop {
            if h.max.is_some_and(|m| start.elapsed() >= m) {
                break;
            }
            std::thread::sleep(HANG_POLL);
            let released = with_engine(|e| {
                e.refresh();
                !e.has_rule(&h.key)
            });
            if released {
                break;
            }
        }
    }
}

/// One call through the engine: latency, admission, then either the real
/// call (`forward`) or the fault (after `on_fault` ended the real operation).
fn run(
    f: Function,
    session: Option<CK_SESSION_HANDLE>,
    phase: CallPhase,
    forward: impl FnOnce(&CK_FUNCTION_LIST, Ctx) -> CK_RV,
    on_fault: impl FnOnce(&CK_FUNCTION_LIST, CK_SESSION_HANDLE),
) -> CK_RV {
    let list = match real() {
        Ok(l) => l,
        Err(rv) => return rv,
    };
    let slot = Slot::take(f, phase);
    wait_latency(f, phase);
    // The session handle is translated and the real call made under one hold
    // of the device read lock, so an unplug (which closes real sessions under
    // the write lock) can never fall between the two and let a stale handle
    // reach a session SoftHSM has since handed out again.
    // C_WaitForSlotEvent may block for good: it must not hold off an unplug.
    let lock = || {
        (f != Function::C_WaitForSlotEvent)
            .then(|| DEVICE.read().unwrap_or_else(PoisonError::into_inner))
    };
    let mut device = lock();
    let (admit, close) = engine_only(|e| e.admit(f, session, phase));
    if !close.is_empty() {
        // This very call noticed the unplug: close first, then go on (the
        // engine has already stopped handing out the closed sessions).
        drop(device);
        close_real_sessions(close);
        device = lock();
    }
    let result = match admit {
        Admit::Refuse(rv) => rv,
        Admit::Fault { rv, session } => {
            if let Some(s) = session {
                on_fault(list, s);
            }
            rv
        }
        Admit::Forward {
            session,
            token_absent,
        } => forward(
            list,
            Ctx {
                session: session.unwrap_or(0),
                token_absent,
            },
        ),
    };
    drop(device);
    drop(slot);
    result
}

/// Calls a real function pointer, or reports it missing.
macro_rules! fwd {
    ($f:expr, $($arg:expr),*) => {
        match $f {
            // SAFETY: the caller's arguments go unchanged (but for the session
            // handle, translated to the real module's) to the real module's
            // implementation of the same PKCS#11 function, which has the same
            // contract the caller already had to meet.
            Some(real_fn) => unsafe { real_fn($($arg),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

fn scratch_len(n: CK_ULONG) -> Option<usize> {
    (n <= MAX_SCRATCH).then(|| (n as usize).max(1))
}

/// Runs a single-part operation (`C_Sign`, `C_Encrypt`, ...) to its end into
/// a scratch buffer, which terminates it in the real module.
///
/// # Safety
/// `input`/`input_len` must be what the client passed to the failed call.
unsafe fn finish_single(
    f: Option<
        unsafe extern "C" fn(
            CK_SESSION_HANDLE,
            *mut CK_BYTE,
            CK_ULONG,
            *mut CK_BYTE,
            *mut CK_ULONG,
        ) -> CK_RV,
    >,
    s: CK_SESSION_HANDLE,
    input: *mut CK_BYTE,
    input_len: CK_ULONG,
) {
    let mut n: CK_ULONG = 0;
    if fwd!(f, s, input, input_len, ptr::null_mut(), &mut n) != CKR_OK {
        return; // an error already ended the operation
    }
    if let Some(len) = scratch_len(n) {
        let mut buf = vec![0u8; len];
        n = len as CK_ULONG;
        let _ = fwd!(f, s, input, input_len, buf.as_mut_ptr(), &mut n);
    }
}

/// Runs a `*Final` call into a scratch buffer, which terminates the operation.
fn finish_final(
    f: Option<unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG) -> CK_RV>,
    s: CK_SESSION_HANDLE,
) {
    let mut n: CK_ULONG = 0;
    if fwd!(f, s, ptr::null_mut(), &mut n) != CKR_OK {
        return;
    }
    if let Some(len) = scratch_len(n) {
        let mut buf = vec![0u8; len];
        n = len as CK_ULONG;
        let _ = fwd!(f, s, buf.as_mut_ptr(), &mut n);
    }
}

/// Flips the bit a `corrupt` rule chose, if any.
///
/// # Safety
/// `out` must point to `len` writable bytes (the output of a successful call).
unsafe fn corrupt_output(f: Function, out: *mut CK_BYTE, len: CK_ULONG) {
    if out.is_null() {
        return;
    }
    let Ok(len) = usize::try_from(len) else {
        return;
    };
    if let Some(bit) = with_engine(|e| e.corrupt_bit(f, len)) {
        // SAFETY: bit < len * 8, so the byte is inside the caller's output,
        // which the real module has just written.
        unsafe { *out.add(bit / 8) ^= 0x80 >> (bit % 8) };
    }
}

fn phase_of(out: *const CK_BYTE) -> CallPhase {
    if out.is_null() {
        CallPhase::Query
    } else {
        CallPhase::Data
    }
}

/// Functions that name a session and need nothing special. `=> F` names the
/// `*Final` that ends the operation after an injected fault.
macro_rules! session_fns {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) $(=> $fin:ident)? ; )*) => { $(
        unsafe extern "C" fn $name(session: CK_SESSION_HANDLE $(, $arg: $ty)*) -> CK_RV {
            guard(|| run(
                Function::$name,
                Some(session),
                CallPhase::Data,
                |l, ctx| fwd!(l.$name, ctx.session $(, $arg)*),
                |_l, _s| { $( finish_final(_l.$fin, _s); )? },
            ))
        }
    )* };
}

session_fns! {
    C_InitPIN(pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_SetPIN(old: *mut CK_UTF8CHAR, old_len: CK_ULONG, new: *mut CK_UTF8CHAR, new_len: CK_ULONG);
    C_GetSessionInfo(info: *mut CK_SESSION_INFO);
    C_GetOperationState(state: *mut CK_BYTE, state_len: *mut CK_ULONG);
    C_SetOperationState(state: *mut CK_BYTE, state_len: CK_ULONG, enc_key: CK_OBJECT_HANDLE, auth_key: CK_OBJECT_HANDLE);
    C_Login(user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_Logout();
    C_CreateObject(template: *mut CK_ATTRIBUTE, count: CK_ULONG, object: *mut CK_OBJECT_HANDLE);
    C_CopyObject(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, new_object: *mut CK_OBJECT_HANDLE);
    C_DestroyObject(object: CK_OBJECT_HANDLE);
    C_GetObjectSize(object: CK_OBJECT_HANDLE, size: *mut CK_ULONG);
    C_GetAttributeValue(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_SetAttributeValue(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjectsInit(template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjects(objects: *mut CK_OBJECT_HANDLE, max: CK_ULONG, found: *mut CK_ULONG);
    C_FindObjectsFinal();
    C_EncryptInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_EncryptUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => C_EncryptFinal;
    C_DecryptInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_DecryptUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG) => C_DecryptFinal;
    C_DigestInit(mechanism: *mut CK_MECHANISM);
    C_DigestUpdate(part: *mut CK_BYTE, part_len: CK_ULONG) => C_DigestFinal;
    C_DigestKey(key: CK_OBJECT_HANDLE) => C_DigestFinal;
    C_SignInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_SignUpdate(part: *mut CK_BYTE, part_len: CK_ULONG) => C_SignFinal;
    C_SignRecoverInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_VerifyInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_VerifyRecoverInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_DigestEncryptUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptDigestUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignEncryptUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptVerifyUpdate(part: *mut CK_BYTE, part_len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_GenerateKey(mechanism: *mut CK_MECHANISM, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(mechanism: *mut CK_MECHANISM, public_template: *mut CK_ATTRIBUTE, public_count: CK_ULONG, private_template: *mut CK_ATTRIBUTE, private_count: CK_ULONG, public_key: *mut CK_OBJECT_HANDLE, private_key: *mut CK_OBJECT_HANDLE);
    C_WrapKey(mechanism: *mut CK_MECHANISM, wrapping_key: CK_OBJECT_HANDLE, key: CK_OBJECT_HANDLE, wrapped: *mut CK_BYTE, wrapped_len: *mut CK_ULONG);
    C_UnwrapKey(mechanism: *mut CK_MECHANISM, unwrapping_key: CK_OBJECT_HANDLE, wrapped: *mut CK_BYTE, wrapped_len: CK_ULONG, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE);
    C_DeriveKey(mechanism: *mut CK_MECHANISM, base_key: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE);
    C_SeedRandom(seed: *mut CK_BYTE, seed_len: CK_ULONG);
    C_GetFunctionStatus();
    C_CancelFunction();
}

/// Single-part operations with an output buffer: corruptible; a fault runs
/// the real operation to its end first.
macro_rules! single_part_fns {
    ($($name:ident),*) => { $(
        unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            input: *mut CK_BYTE,
            input_len: CK_ULONG,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            guard(|| {
                let rv = run(
                    Function::$name,
                    Some(session),
                    phase_of(out),
                    |l, ctx| fwd!(l.$name, ctx.session, input, input_len, out, out_len),
                    // SAFETY: the client's own input for this operation.
                    |l, s| unsafe { finish_single(l.$name, s, input, input_len) },
                );
                if rv == CKR_OK && !out.is_null() && !out_len.is_null() {
                    // SAFETY: on CKR_OK with an output buffer, the real module
                    // wrote *out_len bytes to out (PKCS#11 5.2, output conventions).
                    unsafe { corrupt_output(Function::$name, out, *out_len) };
                }
                rv
            })
        }
    )* };
}

single_part_fns!(
    C_Sign,
    C_SignRecover,
    C_Encrypt,
    C_Decrypt,
    C_Digest,
    C_VerifyRecover
);

/// `*Final` calls with an output buffer: corruptible; a fault ends the
/// operation first.
macro_rules! final_fns {
    ($($name:ident),*) => { $(
        unsafe extern "C" fn $name(
            session: CK_SESSION_HANDLE,
            out: *mut CK_BYTE,
            out_len: *mut CK_ULONG,
        ) -> CK_RV {
            guard(|| {
                let rv = run(
                    Function::$name,
                    Some(session),
                    phase_of(out),
                    |l, ctx| fwd!(l.$name, ctx.session, out, out_len),
                    |l, s| finish_final(l.$name, s),
                );
                if rv == CKR_OK && !out.is_null() && !out_len.is_null() {
                    // SAFETY: as in single_part_fns.
                    unsafe { corrupt_output(Function::$name, out, *out_len) };
                }
                rv
            })
        }
    )* };
}

final_fns!(C_SignFinal, C_EncryptFinal, C_DecryptFinal, C_DigestFinal);

unsafe extern "C" fn C_Verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        run(
            Function::C_Verify,
            Some(session),
            CallPhase::Data,
            |l, ctx| fwd!(l.C_Verify, ctx.session, data, data_len, sig, sig_len),
            // The real call ends the operation whatever it returns.
            |l, s| {
                let _ = fwd!(l.C_Verify, s, data, data_len, sig, sig_len);
            },
        )
    })
}

unsafe extern "C" fn C_VerifyUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        run(
            Function::C_VerifyUpdate,
            Some(session),
            CallPhase::Data,
            |l, ctx| fwd!(l.C_VerifyUpdate, ctx.session, part, part_len),
            // A final with a dummy signature ends the operation.
            |l, s| {
                let mut dummy = [0u8; 1];
                let _ = fwd!(l.C_VerifyFinal, s, dummy.as_mut_ptr(), 1);
            },
        )
    })
}

unsafe extern "C" fn C_VerifyFinal(
    session: CK_SESSION_HANDLE,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        run(
            Function::C_VerifyFinal,
            Some(session),
            CallPhase::Data,
            |l, ctx| fwd!(l.C_VerifyFinal, ctx.session, sig, sig_len),
            |l, s| {
                let _ = fwd!(l.C_VerifyFinal, s, sig, sig_len);
            },
        )
    })
}

unsafe extern "C" fn C_GenerateRandom(
    session: CK_SESSION_HANDLE,
    out: *mut CK_BYTE,
    out_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let rv = run(
            Function::C_GenerateRandom,
            Some(session),
            CallPhase::Data,
            |l, ctx| fwd!(l.C_GenerateRandom, ctx.session, out, out_len),
            |_, _| {},
        );
        if rv == CKR_OK {
            // SAFETY: on CKR_OK the real module filled out_len bytes at out.
            unsafe { corrupt_output(Function::C_GenerateRandom, out, out_len) };
        }
        rv
    })
}

unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        let rv = run(
            Function::C_CloseSession,
            Some(session),
            CallPhase::Data,
            |l, ctx| fwd!(l.C_CloseSession, ctx.session),
            |_, _| {},
        );
        // Gone from the real module either way (closed now, or earlier by a
        // C_CloseAllSessions the client did not tell us about).
        if matches!(rv, CKR_OK | CKR_SESSION_HANDLE_INVALID | CKR_SESSION_CLOSED) {
            with_engine(|e| e.remove_session(session));
        }
        rv
    })
}

/// Functions that name a slot and need nothing special.
macro_rules! slot_fns {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) ; )*) => { $(
        unsafe extern "C" fn $name(slot: CK_SLOT_ID $(, $arg: $ty)*) -> CK_RV {
            guard(|| run(
                Function::$name,
                None,
                CallPhase::Data,
                |l, _| fwd!(l.$name, slot $(, $arg)*),
                |_, _| {},
            ))
        }
    )* };
}

slot_fns! {
    C_GetTokenInfo(info: *mut CK_TOKEN_INFO);
    C_GetMechanismList(list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG);
    C_GetMechanismInfo(mechanism: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO);
    C_InitToken(pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR);
}

unsafe extern "C" fn C_GetSlotList(
    token_present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        run(
            Function::C_GetSlotList,
            None,
            CallPhase::Data,
            |l, ctx| {
                if ctx.token_absent && token_present != CK_FALSE {
                    // Unplugged: no slot has a token.
                    if count.is_null() {
                        return CKR_ARGUMENTS_BAD;
                    }
                    // SAFETY: checked non-NULL; the caller passes a CK_ULONG to fill.
                    unsafe { *count = 0 };
                    return CKR_OK;
                }
                fwd!(l.C_GetSlotList, token_present, list, count)
            },
            |_, _| {},
        )
    })
}

unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        run(
            Function::C_GetSlotInfo,
            None,
            CallPhase::Data,
            |l, ctx| {
                let rv = fwd!(l.C_GetSlotInfo, slot, info);
                if rv == CKR_OK && ctx.token_absent && !info.is_null() {
                    // SAFETY: on CKR_OK the real module filled *info.
                    unsafe { (*info).flags &= !CKF_TOKEN_PRESENT };
                }
                rv
            },
            |_, _| {},
        )
    })
}

unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    application: *mut std::ffi::c_void,
    notify: CK_NOTIFY,
    handle: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        if handle.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let mut real_handle: CK_SESSION_HANDLE = 0;
        let mut epoch = 0;
        let rv = run(
            Function::C_OpenSession,
            None,
            CallPhase::Data,
            |l, _| {
                epoch = with_engine_epoch();
                // Notify callbacks would carry the real handle; SoftHSM never
                // makes them, and Hanko passes none.
                fwd!(
                    l.C_OpenSession,
                    slot,
                    flags,
                    application,
                    notify,
                    &mut real_handle
                )
            },
            |_, _| {},
        );
        if rv != CKR_OK {
            return rv;
        }
        let virt = with_engine(|e| e.add_session(real_handle, slot, epoch));
        // SAFETY: checked non-NULL above; the caller passes a handle to fill.
        unsafe { *handle = virt };
        CKR_OK
    })
}

/// The engine's unplug epoch. The caller holds the device read lock, so no
/// unplug can close sessions until its real call is over; a close queued
/// meanwhile waits for the next engine call.
fn with_engine_epoch() -> u64 {
    ENGINE.lock().unwrap_or_else(PoisonError::into_inner).epoch
}

unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| {
        let rv = run(
            Function::C_CloseAllSessions,
            None,
            CallPhase::Data,
            |l, _| fwd!(l.C_CloseAllSessions, slot),
            |_, _| {},
        );
        if rv == CKR_OK {
            with_engine(|e| e.remove_slot_sessions(slot));
        }
        rv
    })
}

unsafe extern "C" fn C_Initialize(args: *mut std::ffi::c_void) -> CK_RV {
    guard(|| {
        run(
            Function::C_Initialize,
            None,
            CallPhase::Data,
            |l, _| fwd!(l.C_Initialize, args),
            |_, _| {},
        )
    })
}

unsafe extern "C" fn C_Finalize(reserved: *mut std::ffi::c_void) -> CK_RV {
    guard(|| {
        let rv = run(
            Function::C_Finalize,
            None,
            CallPhase::Data,
            |l, _| fwd!(l.C_Finalize, reserved),
            |_, _| {},
        );
        if rv == CKR_OK {
            with_engine(Engine::clear_sessions);
        }
        rv
    })
}

/// What `C_GetInfo` reports as the library description, so logs show that
/// the mock is in the path.
const DESCRIPTION: &[u8; 32] = b"hanko-pkcs11-mock (fault inject)";

unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        run(
            Function::C_GetInfo,
            None,
            CallPhase::Data,
            |l, _| {
                let rv = fwd!(l.C_GetInfo, info);
                if rv == CKR_OK && !info.is_null() {
                    // SAFETY: on CKR_OK the real module filled *info.
                    unsafe { (*info).libraryDescription = *DESCRIPTION };
                }
                rv
            },
            |_, _| {},
        )
    })
}

unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    slot: *mut CK_SLOT_ID,
    reserved: *mut std::ffi::c_void,
) -> CK_RV {
    guard(|| {
        run(
            Function::C_WaitForSlotEvent,
            None,
            CallPhase::Data,
            |l, _| fwd!(l.C_WaitForSlotEvent, flags, slot, reserved),
            |_, _| {},
        )
    })
}

/// The module's entry point: returns the mock's function list, loading the
/// real module (`HANKO_MOCK_REAL_MODULE`) first.
///
/// # Safety
/// `list` must be NULL or point to writable storage for one pointer (the
/// PKCS#11 contract of `C_GetFunctionList`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard(|| {
        if list.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        run(
            Function::C_GetFunctionList,
            None,
            CallPhase::Data,
            |_, _| {
                // SAFETY: checked non-NULL; the host reads the list and never
                // writes through it (the pointer is `*mut` only because the C
                // prototype says so).
                unsafe { *list = ptr::addr_of!(FUNCTION_LIST).cast_mut() };
                CKR_OK
            },
            |_, _| {},
        )
    })
}

static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};
