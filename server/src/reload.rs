//! Configuration reload without a restart (issue #18): SIGHUP, `hanko reload`, or
//! `POST /api/v1/admin/reload`.
//!
//! ```text
//!   read the file ─> parse + resolve (every check of a start) ─> compare with the file
//!   in force ─> load and check the new keys in the token (probe signature, algorithm
//!   policy, chain, certificate valid at its activation time) ─> only then: keys added,
//!   rollovers scheduled, `config-reloaded` recorded with the file's SHA-256
//! ```
//!
//! What a reload changes is what a key rollover needs: a key's successor, of a
//! time-stamping unit or of a seal credential (a new `[[keys]]` entry with `succeeds`
//! and `activate_at`), and the activation time of a rollover still to come. Every other difference from the file in force (a section, a
//! key's other settings, a key removed) takes effect only at a restart, so a file with
//! one is refused as a whole and names it; so is a file that fails any check. A refused
//! reload changes nothing: the server goes on with the configuration in force, and the
//! next reload compares with that one. Reloads run one at a time.
//!
//! `hanko reload` finds the server by the pid file `<data_dir>/hanko.pid`, sends it
//! SIGHUP and prints the result the server writes to `<data_dir>/reload-status.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use serde::Serialize;
use sha2::Digest as _;

use crate::config::{FileConfig, Overrides};
use crate::rollover::{KeyPhase, Pending, unit_for};
use crate::state::AppState;

/// The pid file in the data directory.
pub const PID_FILE: &str = "hanko.pid";
/// The last reload's result in the data directory.
pub const STATUS_FILE: &str = "reload-status.json";

/// What a reload changed.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    /// SHA-256 (hex) of the file now in force.
    pub sha256: String,
    /// What changed, one line each; empty when nothing did.
    pub changes: Vec<String>,
}

/// The file in force.
#[derive(Debug)]
struct InForce {
    table: toml::Table,
    sha256: String,
}

/// Reloads the configuration of a running server (see the module docs).
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    node: String,
    data_dir: PathBuf,
    in_force: tokio::sync::Mutex<InForce>,
    /// Reloads so far, in the status file (so that two answers always differ).
    count: std::sync::atomic::AtomicU64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn read(path: &Path) -> anyhow::Result<(String, String)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let sha = sha256_hex(&bytes);
    let text = String::from_utf8(bytes)
        .with_context(|| format!("config file {} is not UTF-8", path.display()))?;
    Ok((text, sha))
}

impl Reloader {
    /// A reloader of `path`, resolved with `overrides` as at start-up, whose content in
    /// force is what the file holds now (read just after the start's own read).
    pub fn new(
        path: PathBuf,
        overrides: Overrides,
        node: String,
        data_dir: PathBuf,
    ) -> anyhow::Result<Reloader> {
        let (text, sha256) = read(&path)?;
        let table =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        Ok(Reloader {
            path,
            overrides,
            node,
            data_dir,
            in_force: tokio::sync::Mutex::new(InForce { table, sha256 }),
            count: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads: checks the file in full, then applies it, or changes nothing and says
    /// why.
    pub async fn reload(&self, state: &AppState) -> anyhow::Result<ReloadReport> {
        let result = self.reload_inner(state).await;
        let outcome = if result.is_ok() { "applied" } else { "refused" };
        metrics::counter!("hanko_config_reloads_total", "result" => outcome).increment(1);
        match &result {
            Ok(r) => tracing::info!(file = %self.path.display(), sha256 = %r.sha256,
                changes = %r.changes.join("; "), "configuration reloaded"),
            Err(e) => tracing::error!(file = %self.path.display(), error = %format!("{e:#}"),
                "configuration reload refused: the configuration in force stays"),
        }
        self.write_status(&result);
        result
    }

    async fn reload_inner(&self, state: &AppState) -> anyhow::Result<ReloadReport> {
        let mut in_force = self.in_force.lock().await;
        let (text, sha256) = read(&self.path)?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("config file {}", self.path.display()))?;
        let file: FileConfig = toml::from_str(&text)
            .with_context(|| format!("config file {}", self.path.display()))?;
        let cfg = file
            .resolve(&self.overrides)
            .context("the new configuration is not valid")?;
        let restart = needs_restart(&in_force.table, &table);
        if !restart.is_empty() {
            bail!(
                "{} changed, which takes effect only at a restart; reload a file that changes \
                 only keys' rollovers (a new [[keys]] entry with succeeds and activate_at, or \
                 the activate_at of one still to come)",
                restart.join(", ")
            );
        }
        let old_keys = keys_by_label(&in_force.table);
        let new_keys = keys_by_label(&table);
        let mut changes = Vec::new();
        let mut added = Vec::new();
        let mut moved = Vec::new();
        for (label, entry) in &new_keys {
            match old_keys.iter().find(|(l, _)| l == label) {
                None => added.push(label.clone()),
                Some((_, old)) if old == entry => {}
                Some((_, old)) => {
                    if without(old, "activate_at") != without(entry, "activate_at") {
                        bail!(
                            "key \"{label}\" changed, which takes effect only at a restart (a reload \
                             may change only the activate_at of a rollover still to come)"
                        );
                    }
                    moved.push(label.clone());
                }
            }
        }
        for (label, _) in &old_keys {
            if !new_keys.iter().any(|(l, _)| l == label) {
                bail!("key \"{label}\" was removed, which takes effect only at a restart");
            }
        }
        let rollover = state.rollover.as_ref();
        let spec = |label: &str| cfg.keys.iter().find(|k| k.label == label);
        // Moved activation times: only of a rollover still to come, and still ahead.
        let mut rescheduled = Vec::new();
        for label in &moved {
            let (Some(k), Some(r)) = (spec(label), rollover) else {
                bail!(
                    "key \"{label}\": activate_at changed, but it is not a rollover still to come"
                );
            };
            let Some(s) = &k.succession else {
                bail!(
                    "key \"{label}\": activate_at changed, but it is not a rollover still to come"
                );
            };
            if !matches!(r.phase(label), KeyPhase::Pending { .. }) {
                bail!("key \"{label}\" took over already: its activate_at can no longer change");
            }
            let key = state
                .key(label)
                .with_context(|| format!("key \"{label}\" is not loaded"))?;
            rescheduled.push(pending_of(&key, s, s.activate_at)?);
            changes.push(format!(
                "key \"{label}\" now takes over at {}",
                crate::http::anchor_api::rfc3339(s.activate_at)
            ));
        }
        // Added keys: each a key's successor (TSA or seal), loaded and checked in full.
        let specs: Vec<_> = added.iter().filter_map(|l| spec(l).cloned()).collect();
        let mut scheduled = Vec::new();
        let mut loaded = Vec::new();
        let mut seals = Vec::new();
        if !specs.is_empty() {
            let Some(r) = rollover else {
                bail!("new keys need a running rollover ({})", added.join(", "));
            };
            for k in &specs {
                let Some(s) = &k.succession else {
                    bail!(
                        "key \"{}\" is new but succeeds no key: a reload adds only a key's \
                         successor (keys.succeeds, keys.activate_at); other keys take effect at \
                         a restart",
                        k.label
                    );
                };
                let before = specs.iter().any(|o| o.label == s.predecessor);
                if !before {
                    match r.phase(&s.predecessor) {
                        KeyPhase::Retired { .. } => bail!(
                            "key \"{}\" succeeds \"{}\", which was handed over from already",
                            k.label,
                            s.predecessor
                        ),
                        KeyPhase::Active | KeyPhase::Pending { .. } => {}
                    }
                }
            }
            let Some(hsm) = &state.hsm else {
                bail!("no HSM token to load the new keys from");
            };
            let (keys, _backlog) = crate::keys::load_keys(hsm, &specs, &cfg.pool)
                .await
                .context("the new keys")?;
            let keys = crate::suspension::gate_keys(keys, &state.suspensions);
            for (k, spec) in keys.iter().zip(&specs) {
                let Some(s) = &spec.succession else { continue };
                let at = s.activate_at.max(SystemTime::now());
                scheduled.push(pending_of(k, s, at)?);
                if let Some(metadata) = &spec.seal {
                    // A seal key: its credential and visible seal, serving nothing until
                    // its time.
                    let Some(sealer) = &state.sealer else {
                        bail!("key \"{}\": no sealer to add a seal key to", k.label());
                    };
                    let credential = crate::seal::credential_of(k, metadata.clone(), at)?;
                    let visible = crate::visible_seal::VisibleSeals::for_credentials(
                        std::slice::from_ref(&credential),
                        cfg.seal_font.as_deref(),
                        cfg.dev,
                    )
                    .with_context(|| format!("key \"{}\": visible seal", k.label()))?;
                    seals.push((sealer.clone(), credential, visible));
                }
                changes.push(format!(
                    "key \"{}\" added: succeeds \"{}\" at {}",
                    k.label(),
                    s.predecessor,
                    crate::http::anchor_api::rfc3339(s.activate_at)
                ));
            }
            loaded = keys;
        }
        // Everything is checked: apply.
        let store = state.store.as_ref();
        for k in &loaded {
            if let Some(store) = store {
                crate::audit::record(store, crate::audit::key_loaded(k))
                    .await
                    .with_context(|| {
                        format!("cannot record key \"{}\" in the issuance log", k.label())
                    })?;
            }
        }
        state.keys.extend(loaded);
        for (sealer, credential, visible) in seals {
            sealer.add(credential, visible);
        }
        if let Some(r) = rollover {
            for p in rescheduled.into_iter().chain(scheduled) {
                r.schedule(p);
            }
        }
        if sha256 != in_force.sha256 {
            if let Some(store) = store {
                let ev = crate::audit::config_reloaded(&sha256, &changes.join("; "), &self.node);
                crate::audit::record_or_log(store, ev).await;
            }
            in_force.sha256 = sha256.clone();
        }
        in_force.table = table;
        Ok(ReloadReport { sha256, changes })
    }

    /// Writes the result for `hanko reload` (best effort: a failure is logged).
    fn write_status(&self, result: &anyhow::Result<ReloadReport>) {
        let n = self
            .count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut body = match result {
            Ok(r) => serde_json::json!({
                "ok": true, "sha256": r.sha256, "changes": r.changes,
                "at": crate::http::anchor_api::rfc3339(SystemTime::now()),
            }),
            Err(e) => serde_json::json!({
                "ok": false, "error": format!("{e:#}"),
                "at": crate::http::anchor_api::rfc3339(SystemTime::now()),
            }),
        };
        body["reload"] = n.into();
        body["pid"] = std::process::id().into();
        let path = self.data_dir.join(STATUS_FILE);
        let tmp = path.with_extension("json.tmp");
        let written =
            std::fs::write(&tmp, format!("{body:#}\n")).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the reload status");
        }
    }

    /// Reloads on every SIGHUP until aborted.
    pub fn spawn_on_sighup(
        state: Arc<AppState>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        use tokio::signal::unix::{SignalKind, signal};
        let Some(reloader) = state.reloader.clone() else {
            return Ok(None);
        };
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        Ok(Some(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!(file = %reloader.path().display(), "SIGHUP received: reloading the configuration");
                let _ = reloader.reload(&state).await;
            }
        })))
    }
}

/// The rollover of `key` (which succeeds as `s` says) at `s.activate_at`, its
/// certificate checked for `at`: a time-stamping key's unit, or a seal key's
/// certificate against the seal profile.
fn pending_of(
    key: &crate::state::SigningKey,
    s: &crate::config::Succession,
    at: SystemTime,
) -> anyhow::Result<Pending> {
    let unit = match key.usage() {
        crate::config::KeyUsage::Tsa => Some(unit_for(key, at)?),
        crate::config::KeyUsage::Seal => {
            crate::keys::check_certificate(key.usage(), key.certificate(), at)
                .with_context(|| format!("seal key \"{}\" at its activation", key.label()))?;
            None
        }
    };
    Ok(Pending {
        successor: key.label().to_owned(),
        predecessor: s.predecessor.clone(),
        at: s.activate_at,
        unit,
        certificate: key.certificate().clone(),
    })
}

/// The top-level tables and keys whose values differ between `old` and `new`, other
/// than `[[keys]]`.
fn needs_restart(old: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| n.as_str() != "keys" && old.get(*n) != new.get(*n))
        .map(|n| match old.get(n).or(new.get(n)) {
            Some(toml::Value::Table(_)) => format!("[{n}]"),
            Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_table) => {
                format!("[[{n}]]")
            }
            _ => n.clone(),
        })
        .collect()
}

/// The `[[keys]]` entries by label.
fn keys_by_label(t: &toml::Table) -> Vec<(String, toml::Table)> {
    t.get("keys")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| {
                    let e = v.as_table()?;
                    Some((e.get("label")?.as_str()?.to_owned(), e.clone()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn without(t: &toml::Table, key: &str) -> toml::Table {
    let mut t = t.clone();
    t.remove(key);
    t
}

/// Writes the pid file; removed by [`PidFile`]'s drop.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes `<data_dir>/hanko.pid` with this process's id.
    pub fn write(data_dir: &Path) -> anyhow::Result<PidFile> {
        let path = data_dir.join(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: a second server on the same data directory (tests, a developer)
        // wrote its pid over ours, and `hanko reload` should still find it.
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn only_the_keys_may_differ_without_a_restart() {
        let old: toml::Table = toml::from_str(
            "listen = \"127.0.0.1:1\"\n[http]\nmax_in_flight = 4\n[[keys]]\nlabel = \"a\"\n[[clients]]\nid = \"x\"\n",
        )
        .unwrap();
        let same: toml::Table = toml::from_str(
            "listen = \"127.0.0.1:1\"\n[http]\nmax_in_flight = 4\n[[keys]]\nlabel = \"b\"\n[[clients]]\nid = \"x\"\n",
        )
        .unwrap();
        assert!(needs_restart(&old, &same).is_empty());
        let other: toml::Table = toml::from_str(
            "listen = \"127.0.0.1:2\"\n[http]\nmax_in_flight = 5\n[[keys]]\nlabel = \"a\"\n[[clients]]\nid = \"y\"\n[tsa]\nkey = \"a\"\n",
        )
        .unwrap();
        assert_eq!(
            needs_restart(&old, &other),
            vec!["[[clients]]", "[http]", "listen", "[tsa]"]
        );
    }

    #[test]
    fn keys_are_compared_by_label() {
        let t: toml::Table = toml::from_str(
            "[[keys]]\nlabel = \"a\"\nactivate_at = \"x\"\n[[keys]]\nlabel = \"b\"\n",
        )
        .unwrap();
        let keys = keys_by_label(&t);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0, "a");
        assert!(
            without(&keys[0].1, "activate_at")
                .get("activate_at")
                .is_none()
        );
        assert_eq!(without(&keys[1].1, "activate_at"), keys[1].1);
    }
}
