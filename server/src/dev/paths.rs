//! The files of a dev data directory: where they are, the first synchronous step that
//! makes the directories and `softhsm2.conf`, and how secrets and certificates are
//! written (atomically, with an exact mode, never over a file that appeared meanwhile).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::Report;
use crate::config;

/// The paths of a dev data directory.
#[derive(Clone, Debug)]
pub struct DevPaths {
    /// The data directory, absolute.
    pub data_dir: PathBuf,
    /// `<data-dir>/softhsm2.conf`.
    pub softhsm_conf: PathBuf,
    /// `<data-dir>/softhsm/`.
    pub token_dir: PathBuf,
    /// `<data-dir>/dev-pin`.
    pub pin_file: PathBuf,
    /// `<data-dir>/dev-api-key`: the dev client's API key (0600).
    pub api_key_file: PathBuf,
    /// `<data-dir>/dev-pki/`.
    pub pki_dir: PathBuf,
    /// `<data-dir>/hanko.toml`.
    pub config_file: PathBuf,
}

impl DevPaths {
    /// Paths under `data_dir` (made absolute against the current directory).
    pub fn new(data_dir: &Path) -> anyhow::Result<DevPaths> {
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("data directory {}", data_dir.display()))?;
        Ok(DevPaths {
            softhsm_conf: data_dir.join("softhsm2.conf"),
            token_dir: data_dir.join("softhsm"),
            pin_file: data_dir.join("dev-pin"),
            api_key_file: data_dir.join("dev-api-key"),
            pki_dir: data_dir.join("dev-pki"),
            config_file: data_dir.join(config::DEV_CONFIG_FILE),
            data_dir,
        })
    }

    /// `<pki>/<name>`.
    pub fn pki(&self, name: &str) -> PathBuf {
        self.pki_dir.join(name)
    }

    /// The dev HTTPS listener's certificate chain (leaf for `localhost` and
    /// `127.0.0.1`, then the dev issuing CA) and its DEV-ONLY key file (0600).
    pub fn tls_server_files(&self) -> (PathBuf, PathBuf) {
        (
            self.pki("tls-server-chain.pem"),
            self.pki("tls-server.key.DEV-ONLY.pem"),
        )
    }
}

/// The first, synchronous step: directories and `softhsm2.conf`. Runs before any thread
/// exists, because the caller points `SOFTHSM2_CONF` at the file next.
pub fn prepare(paths: &DevPaths, report: &mut Report) -> anyhow::Result<()> {
    for dir in [&paths.data_dir, &paths.token_dir, &paths.pki_dir] {
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let conf = format!(
        "# Written by `hanko dev-init`: SoftHSM2 for DEVELOPMENT ONLY.\n\
         directories.tokendir = {}/\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        paths.token_dir.display()
    );
    match fs::read_to_string(&paths.softhsm_conf) {
        Ok(existing) if existing == conf => report.reused(paths.softhsm_conf.display()),
        Ok(_) => bail!(
            "{} exists but does not point at {}; move the data directory back or delete the file",
            paths.softhsm_conf.display(),
            paths.token_dir.display()
        ),
        Err(_) => {
            write_file(&paths.softhsm_conf, conf.as_bytes(), 0o644)?;
            report.created(paths.softhsm_conf.display());
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temp file + rename) with `mode`; refuses to
/// overwrite.
pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-hanko");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // The umask may have narrowed the mode; make it exact.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    if path.exists() {
        let _ = fs::remove_file(&tmp);
        bail!(
            "{} appeared while writing it; not overwriting",
            path.display()
        );
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

/// Replaces `path` (dev certificates that are renewed).
pub(super) fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if path.exists() {
        fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    write_file(path, bytes, mode)
}

/// Warns if a secret file is readable by others.
pub(super) fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "secret file is readable by group or others; chmod 600 it"
        );
    }
    Ok(())
}
