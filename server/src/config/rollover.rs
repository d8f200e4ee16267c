//! `keys.succeeds` and `keys.activate_at`: the key rollover of time-stamping units
//! (issue #18), read and checked.
//!
//! A succession is a chain `first -> next -> ...`: `[tsa]` names only the first key of
//! a chain (in `key` or `policy_keys`); each later key takes over everything its
//! predecessor signs at its activation time (`rollover.rs` does the switching).

use std::time::SystemTime;

use anyhow::{Context as _, bail};

use super::file::KeySection;
use super::settings::{KeySpec, Succession};

/// Reads `keys.succeeds` and `keys.activate_at` of one entry (both or neither).
pub(super) fn parse(k: &KeySection) -> anyhow::Result<Option<Succession>> {
    match (&k.succeeds, &k.activate_at) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!(
            "key \"{}\": keys.succeeds needs keys.activate_at, the RFC 3339 time it takes over",
            k.label
        ),
        (None, Some(_)) => bail!(
            "key \"{}\": keys.activate_at needs keys.succeeds, the label of the key it takes over from",
            k.label
        ),
        (Some(predecessor), Some(at)) => {
            if predecessor == &k.label {
                bail!("key \"{}\": keys.succeeds names the key itself", k.label);
            }
            let activate_at = parse_time(at)
                .with_context(|| format!("key \"{}\": keys.activate_at = {at:?}", k.label))?;
            Ok(Some(Succession {
                predecessor: predecessor.clone(),
                activate_at,
            }))
        }
    }
}

/// An RFC 3339 date and time with its offset (`2027-04-01T00:00:00Z`).
pub fn parse_time(text: &str) -> anyhow::Result<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
        anyhow::anyhow!(
            "not an RFC 3339 date and time with an offset, like 2027-04-01T00:00:00Z: {e}"
        )
    })?;
    let secs = u64::try_from(t.timestamp()).map_err(|_| anyhow::anyhow!("before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(secs)
        + std::time::Duration::from_nanos(u64::from(t.timestamp_subsec_nanos())))
}

/// Checks the successions between `keys`: each names a configured TSA key, a key has at
/// most one successor, and each key of a chain activates after the one before it.
pub(super) fn check(keys: &[KeySpec]) -> anyhow::Result<()> {
    for k in keys {
        let Some(s) = &k.succession else { continue };
        let Some(prev) = keys.iter().find(|p| p.label == s.predecessor) else {
            bail!(
                "key \"{}\": keys.succeeds = \"{}\" is not a configured [[keys]] entry",
                k.label,
                s.predecessor
            );
        };
        if prev.usage != k.usage {
            bail!(
                "key \"{}\": keys.succeeds = \"{}\" is a key of another usage",
                k.label,
                s.predecessor
            );
        }
        if let Some(other) = keys.iter().find(|o| {
            o.label != k.label
                && o.succession
                    .as_ref()
                    .is_some_and(|os| os.predecessor == s.predecessor)
        }) {
            bail!(
                "keys \"{}\" and \"{}\" both succeed \"{}\": a key has one successor",
                k.label,
                other.label,
                s.predecessor
            );
        }
        if let Some(prev_at) = prev.succession.as_ref().map(|p| p.activate_at)
            && prev_at >= s.activate_at
        {
            bail!(
                "key \"{}\" activates at or before \"{}\", the key it succeeds",
                k.label,
                prev.label
            );
        }
    }
    // No cycle: walking back from any key ends at a key that succeeds nobody.
    for k in keys {
        let mut at = k;
        for _ in 0..=keys.len() {
            match &at.succession {
                None => break,
                Some(s) => match keys.iter().find(|p| p.label == s.predecessor) {
                    Some(p) => at = p,
                    None => break,
                },
            }
        }
        if at.succession.is_some() {
            bail!("key \"{}\": keys.succeeds makes a cycle", k.label);
        }
    }
    Ok(())
}

/// The keys that follow `first` in its succession, in order.
pub fn successors_of<'a>(keys: &'a [KeySpec], first: &str) -> Vec<&'a KeySpec> {
    let mut out = Vec::new();
    let mut label = first;
    while let Some(next) = keys.iter().find(|k| {
        k.succession
            .as_ref()
            .is_some_and(|s| s.predecessor == label)
    }) {
        if out.iter().any(|k: &&KeySpec| k.label == next.label) {
            break; // `check` refuses cycles; never loop anyway
        }
        out.push(next);
        label = &next.label;
    }
    out
}
