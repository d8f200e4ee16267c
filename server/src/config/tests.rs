//! Tests of the configuration: parsing, precedence and every refusal.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use super::*;

#[test]
fn example_config_parses_and_flags_win() {
    let text = include_str!("../../../ops/hanko.example.toml");
    let raw: FileConfig = toml::from_str(text).unwrap();
    let cfg = raw
        .clone()
        .resolve(&Overrides {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(cfg.listen.to_string(), "0.0.0.0:8080");
    assert!(!cfg.dev);
    assert!(!cfg.keys.is_empty());
    let cfg = raw.resolve(&Overrides::default()).unwrap();
    assert_ne!(cfg.listen.to_string(), "0.0.0.0:8080");
}

#[test]
fn durability_none_only_in_dev() {
    let text = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                [store]\ndurability = \"none\"\n";
    let raw: FileConfig = toml::from_str(text).unwrap();
    let e = raw.clone().resolve(&Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("only with --dev"), "{e}");
    let dev = Overrides {
        dev: true,
        ..Default::default()
    };
    let cfg = raw.resolve(&dev).unwrap();
    assert_eq!(cfg.store.durability, Durability::None);
    let raw: FileConfig = toml::from_str(&text.replace("\"none\"", "\"fast\"")).unwrap();
    assert!(raw.resolve(&dev).is_err());
}

#[test]
fn linger_ms_is_bounded() {
    let base = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                [store]\n";
    let cfg = |linger: &str| {
        toml::from_str::<FileConfig>(&format!("{base}linger_ms = {linger}\n"))
            .unwrap()
            .resolve(&Overrides::default())
    };
    let ok = cfg("2.5").unwrap();
    assert_eq!(ok.store.options.linger, Duration::from_micros(2500));
    let unset = toml::from_str::<FileConfig>(base)
        .unwrap()
        .resolve(&Overrides::default())
        .unwrap();
    assert_eq!(unset.store.options.linger, DEFAULT_LINGER);
    assert_eq!(cfg("0").unwrap().store.options.linger, Duration::ZERO);
    assert!(cfg("150").is_err());
    assert!(cfg("-1.0").is_err());
}

#[test]
fn http_limits_default_to_the_pool_and_are_checked() {
    let base = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\nworkers = 3\nqueue_depth = 40\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n";
    let cfg = |http: &str| {
        toml::from_str::<FileConfig>(&format!("{base}[http]\n{http}"))
            .unwrap()
            .resolve(&Overrides::default())
    };
    let c = cfg("").unwrap();
    assert_eq!(c.http.max_in_flight, 40, "hsm.queue_depth");
    assert_eq!(c.http.max_in_flight_bulk, 40, "hsm.queue_depth, per lane");
    assert_eq!(c.http.rate_limit, None, "off by default");
    let c = cfg("max_in_flight = 8\nrate_limit_per_sec = 50\n").unwrap();
    assert_eq!(c.http.max_in_flight, 8);
    let r = c.http.rate_limit.unwrap();
    assert_eq!((r.per_sec.get(), r.burst.get()), (50, 50));
    let r = cfg("rate_limit_per_sec = 5\nrate_limit_burst = 20\n")
        .unwrap()
        .http
        .rate_limit
        .unwrap();
    assert_eq!((r.per_sec.get(), r.burst.get()), (5, 20));
    assert_eq!(
        cfg("rate_limit_per_sec = 0\n").unwrap().http.rate_limit,
        None
    );
    assert_eq!(c.http.header_timeout, DEFAULT_HEADER_TIMEOUT);
    assert_eq!(c.http.body_timeout, DEFAULT_BODY_TIMEOUT);
    assert_eq!(c.http.keepalive_timeout, DEFAULT_KEEPALIVE_TIMEOUT);
    assert_eq!(c.http.max_connections, DEFAULT_MAX_CONNECTIONS);
    assert_eq!(
        c.http.max_connections_per_source,
        DEFAULT_MAX_CONNECTIONS_PER_SOURCE
    );
    let c = cfg(
        "header_timeout_ms = 2000\nbody_timeout_ms = 3000\nkeepalive_timeout_ms = 4000\n\
         max_connections = 10\n",
    )
    .unwrap();
    assert_eq!(c.http.header_timeout, Duration::from_secs(2));
    assert_eq!(c.http.body_timeout, Duration::from_secs(3));
    assert_eq!(c.http.keepalive_timeout, Duration::from_secs(4));
    assert_eq!(c.http.max_connections, 10);
    assert_eq!(
        c.http.max_connections_per_source, 10,
        "at most max_connections"
    );
    assert_eq!(c.http.threads, None, "one runtime thread per core");
    assert_eq!(cfg("threads = 3\n").unwrap().http.threads, Some(3));
    for bad in [
        "threads = 0\n",
        "threads = 1025\n",
        "header_timeout_ms = 99\n",
        "body_timeout_ms = 300001\n",
        "keepalive_timeout_ms = 0\n",
        "max_connections = 0\n",
        "max_connections_per_source = 0\n",
        "max_connections = 8\nmax_connections_per_source = 9\n",
    ] {
        assert!(cfg(bad).is_err(), "{bad}");
    }
    assert!(cfg("max_in_flight = 0\n").is_err());
    assert!(cfg("rate_limit_per_sec = 5\nrate_limit_burst = 0\n").is_err());
    assert!(cfg("rate_limit_burst = 5\n").is_err());
    let typo = toml::from_str::<FileConfig>(&format!("{base}[http]\nmax_inflight = 5\n"));
    assert!(typo.is_err(), "a typo is refused");
}

#[test]
fn typos_and_missing_keys_are_refused() {
    let e = toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    let raw: FileConfig = toml::from_str("[hsm]\nmodule = \"/x.so\"\n").unwrap();
    let e = raw.resolve(&Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("token_label"), "{e}");
    let raw: FileConfig =
        toml::from_str("[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n").unwrap();
    let e = raw.resolve(&Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("no [[keys]]"), "{e}");
}

/// Issue #11: without `store.node_id` and a host name, production refuses to start (it
/// used to fall back to "node-1", the same on every node of a shared log).
#[test]
fn node_id_is_never_guessed_in_production() {
    use super::resolve::resolve_node_id;
    let host = || Some("tsa-a.example".to_owned());
    assert_eq!(
        resolve_node_id(Some("n7".into()), host(), false).unwrap(),
        "n7"
    );
    assert_eq!(
        resolve_node_id(None, host(), false).unwrap(),
        "tsa-a.example"
    );
    let e = resolve_node_id(None, None, false).unwrap_err().to_string();
    assert!(e.contains("store.node_id"), "{e}");
    assert_eq!(resolve_node_id(None, None, true).unwrap(), DEV_NODE_ID);
    assert!(resolve_node_id(Some("  ".into()), host(), true).is_err());
}

#[test]
fn configured_node_id_reaches_the_store_options() {
    let text = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                [store]\nnode_id = \"tsa-node-3\"\n";
    let cfg = toml::from_str::<FileConfig>(text)
        .unwrap()
        .resolve(&Overrides::default())
        .unwrap();
    assert_eq!(cfg.store.options.node_id, "tsa-node-3");
}

#[test]
fn csc_info_defaults_and_refusals() {
    let base = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                [csc]\n";
    let cfg = |extra: &str| {
        toml::from_str::<FileConfig>(&format!("{base}{extra}\n"))
            .unwrap()
            .resolve(&Overrides::default())
    };
    assert_eq!(cfg("").unwrap().csc, CscInfo::default());
    let set =
        cfg("name = \"市役所\"\nregion = \"JP\"\nlang = \"ja-JP\"\nlogo = \"https://x/l.png\"")
            .unwrap()
            .csc;
    assert_eq!(
        (set.name.as_str(), set.region.as_str(), set.lang.as_str()),
        ("市役所", "JP", "ja-JP")
    );
    assert_eq!(set.description, CscInfo::default().description);
    for (bad, says) in [
        ("region = \"jp\"", "csc.region"),
        ("region = \"JPN\"", "csc.region"),
        ("lang = \"\"", "csc.lang"),
        ("lang = \"en US\"", "csc.lang"),
        ("lang = \"-en\"", "csc.lang"),
        ("description = \"a\\nb\"", "csc.description"),
    ] {
        let e = cfg(bad).unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
    let long = format!("name = \"{}\"", "x".repeat(256));
    assert!(cfg(&long).unwrap_err().to_string().contains("csc.name"));
}

/// A configuration with one seal key whose `[keys.seal]` is `seal` and a `[seal]`
/// section `section`, resolved in `data_dir`.
fn with_seal(data_dir: &std::path::Path, seal: &str, section: &str) -> anyhow::Result<Config> {
    let text = format!(
        "data_dir = {:?}\n[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
         [[keys]]\nlabel = \"s\"\nusage = \"seal\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"s.pem\"\n\
         [keys.seal]\n{seal}\n{section}",
        data_dir.to_str().unwrap()
    );
    toml::from_str::<FileConfig>(&text)?.resolve(&Overrides::default())
}

#[test]
fn seal_metadata_is_resolved_and_each_defect_named() {
    use hanko_pki::HashAlgorithm;
    use hanko_pki::alg::DigestSignAlgorithm;
    use hanko_seal::Level;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = with_seal(
        d,
        "description = \"Residence\"\nlevels = [\"b-b\", \"B-B\"]\nalgorithms = [\"ecdsa-sha384\"]\ndisplay_name = \"Hanko 開発市役所\"",
        "",
    )
    .unwrap();
    let m = cfg.keys[0].seal.clone().unwrap();
    assert_eq!(m.levels, [Level::BB]);
    assert_eq!(
        m.digest_algorithms,
        Some(vec![DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha384)])
    );
    assert_eq!(m.display_name.as_deref(), Some("Hanko 開発市役所"));
    assert_eq!(m.description.as_deref(), Some("Residence"));
    assert!(cfg.seal_tsa.is_none());

    let e = |seal: &str| format!("{:#}", with_seal(d, seal, "").unwrap_err());
    assert!(e("levels = []").contains("levels is empty"));
    assert!(e("levels = [\"B-LTA\"]").contains("unknown seal level"));
    assert!(e("algorithms = [\"ed25519\"]").contains("not a digest-signing algorithm"));
    assert!(e("algorithms = [\"md5\"]").contains("not a digest-signing algorithm"));
    assert!(e("display_name = \" \"").contains("display_name is empty"));
    assert!(e("image = \"missing.png\"").contains("cannot read image"));
    std::fs::write(d.join("not.png"), b"GIF89a").unwrap();
    assert!(e("image = \"not.png\"").contains("no PNG signature"));

    // [keys.seal] belongs to seal keys only.
    let text = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                [keys.seal]\ndescription = \"x\"\n";
    let e = toml::from_str::<FileConfig>(text)
        .unwrap()
        .resolve(&Overrides::default())
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("only for keys with usage = \"seal\""),
        "{e}"
    );
}

#[test]
fn the_external_tsa_is_http_or_https_with_a_bounded_timeout_and_a_readable_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = with_seal(d, "", "[seal]\ntsa_url = \"http://127.0.0.1:9/tsa\"\n").unwrap();
    let tsa = cfg.seal_tsa.unwrap();
    assert_eq!(tsa.url, "http://127.0.0.1:9/tsa");
    assert_eq!(tsa.timeout, DEFAULT_TSA_TIMEOUT);
    assert!(tsa.trust_anchors.is_empty());

    let e = |section: &str| format!("{:#}", with_seal(d, "", section).unwrap_err());
    let https = "[seal]\ntsa_url = \"https://tsa.example/\"\n";
    assert_eq!(
        with_seal(d, "", https).unwrap().seal_tsa.unwrap().url,
        "https://tsa.example/"
    );
    assert!(e(&format!("{https}tsa_tls_ca = \"nowhere.pem\"")).contains("cannot read"));
    std::fs::write(d.join("not-pem.pem"), "# nothing\n").unwrap();
    assert!(e(&format!("{https}tsa_tls_ca = \"not-pem.pem\"")).contains("no CERTIFICATE"));
    assert!(
        e("[seal]\ntsa_url = \"http://x/\"\ntsa_tls_ca = \"not-pem.pem\"")
            .contains("for an https:// seal.tsa_url")
    );
    assert!(e("[seal]\ntsa_url = \"ftp://tsa.example/\"").contains("not an http:// or https://"));
    assert!(e("[seal]\ntsa_url = \"http://x/\"\ntsa_timeout_ms = 100").contains("1000..=60000"));
    assert!(e("[seal]\ntsa_ca = \"root.pem\"").contains("need seal.tsa_url"));
    assert!(e("[seal]\ntsa_url = \"http://x/\"\ntsa_ca = \"root.pem\"").contains("cannot read"));
    std::fs::write(d.join("empty.pem"), "# nothing\n").unwrap();
    assert!(
        e("[seal]\ntsa_url = \"http://x/\"\ntsa_ca = \"empty.pem\"").contains("no certificate")
    );
}

/// A TSA-key config with `extra` TOML, resolved (`dev` as `--dev`).
fn with_anchor(extra: &str, dev: bool) -> anyhow::Result<Config> {
    let text = format!(
        "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
         [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
         {extra}"
    );
    toml::from_str::<FileConfig>(&text)?.resolve(&Overrides {
        dev,
        ..Default::default()
    })
}

#[test]
fn anchoring_defaults_to_the_own_tsa_every_minute_and_refuses_bad_targets() {
    let cfg = with_anchor("", false).unwrap();
    assert!(cfg.anchor.enabled && cfg.anchor.self_target);
    assert_eq!(cfg.anchor.interval, DEFAULT_ANCHOR_INTERVAL);
    assert_eq!(cfg.anchor.max_leaves, DEFAULT_MAX_LEAVES);
    assert_eq!(cfg.anchor.target_names(), ["self"]);
    assert_eq!(
        with_anchor("", true).unwrap().anchor.interval,
        DEV_ANCHOR_INTERVAL
    );
    let cfg = with_anchor(
        "[anchor]\ninterval_secs = 10\n[[anchor.external]]\nname = \"tsa-b\"\n\
         url = \"https://tsa-b.example/tsa\"\npolicy = \"1.2.3\"\n",
        false,
    )
    .unwrap();
    assert_eq!(cfg.anchor.interval, Duration::from_secs(10));
    assert_eq!(cfg.anchor.target_names(), ["self", "tsa-b"]);
    assert_eq!(cfg.anchor.external[0].tsa.policy.as_deref(), Some("1.2.3"));

    let e = |extra: &str| format!("{:#}", with_anchor(extra, false).unwrap_err());
    assert!(e("[anchor]\ninterval_secs = 0\n").contains("1..=86400"));
    assert!(e("[anchor]\nmax_leaves = 0\n").contains("1..=10000000"));
    assert!(e("[anchor]\nretry_max_secs = 100000\n").contains("1..=86400"));
    let ext = |name: &str, rest: &str| {
        format!("[[anchor.external]]\nname = \"{name}\"\nurl = \"http://x/tsa\"\n{rest}")
    };
    assert!(e(&ext("self", "")).contains("not \"self\""));
    assert!(e(&ext("a b", "")).contains("A-Z a-z 0-9"));
    assert!(e(&format!("{}{}", ext("b", ""), ext("b", ""))).contains("used twice"));
    assert!(e(&ext("b", "policy = \"not-an-oid\"\n")).contains("not a dotted OID"));
    assert!(e(&ext("b", "timeout_ms = 5\n")).contains("1000..=60000"));
    assert!(e(&ext("b", "tls_ca = \"x.pem\"\n")).contains("is for an https://"));
    assert!(
        e("[[anchor.external]]\nname = \"b\"\nurl = \"ftp://x/\"\n")
            .contains("[[anchor.external]] \"b\": url")
    );
    assert!(e("[anchor]\nunknown = 1\n").contains("unknown field"));

    // No target: off unless asked for; self needs a TSA.
    let seal_only = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
        [[keys]]\nlabel = \"s\"\nusage = \"seal\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"s.pem\"\n";
    let resolve = |extra: &str| {
        toml::from_str::<FileConfig>(&format!("{seal_only}{extra}"))
            .unwrap()
            .resolve(&Overrides::default())
    };
    assert!(!resolve("").unwrap().anchor.enabled);
    assert!(
        format!("{:#}", resolve("[anchor]\nenabled = true\n").unwrap_err()).contains("no target")
    );
    assert!(
        format!("{:#}", resolve("[anchor]\nself = true\n").unwrap_err())
            .contains("needs the server's own TSA")
    );
}

/// `[[keys]]` with successions: `extra` lines per key (`label => extra`), then `tail`.
fn with_successions(keys: &[(&str, &str)], tail: &str) -> anyhow::Result<Config> {
    let mut text = String::from("[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n");
    for (label, extra) in keys {
        text.push_str(&format!(
            "[[keys]]\nlabel = \"{label}\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n{extra}"
        ));
    }
    text.push_str(tail);
    toml::from_str::<FileConfig>(&text)?.resolve(&Overrides::default())
}

#[test]
fn successions_are_read_and_each_defect_named() {
    let at = "activate_at = \"2027-04-01T00:00:00Z\"\n";
    let cfg = with_successions(
        &[
            ("a", ""),
            ("b", &format!("succeeds = \"a\"\n{at}")),
            (
                "c",
                "succeeds = \"b\"\nactivate_at = \"2027-05-01T09:00:00+09:00\"\n",
            ),
        ],
        "",
    )
    .unwrap();
    // [tsa] defaults to the first key of the succession, not a successor.
    let tsa = cfg.tsa.as_ref().unwrap();
    assert!(tsa.units.iter().all(|(_, l)| l == "a"));
    let b = cfg.keys.iter().find(|k| k.label == "b").unwrap();
    let s = b.succession.as_ref().unwrap();
    assert_eq!(s.predecessor, "a");
    assert_eq!(
        s.activate_at,
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_806_537_600)
    );
    let order: Vec<&str> = successors_of(&cfg.keys, "a")
        .iter()
        .map(|k| k.label.as_str())
        .collect();
    assert_eq!(order, ["b", "c"]);

    let refused = |keys: &[(&str, &str)], tail: &str, want: &str| {
        let e = format!("{:#}", with_successions(keys, tail).unwrap_err());
        assert!(e.contains(want), "{want:?} not in: {e}");
    };
    refused(
        &[("a", ""), ("b", "succeeds = \"a\"\n")],
        "",
        "needs keys.activate_at",
    );
    refused(&[("a", ""), ("b", at)], "", "needs keys.succeeds");
    refused(
        &[
            ("a", ""),
            ("b", "succeeds = \"a\"\nactivate_at = \"2027-04-01\"\n"),
        ],
        "",
        "RFC 3339",
    );
    refused(
        &[("a", ""), ("b", &format!("succeeds = \"x\"\n{at}"))],
        "",
        "\"x\" is not a configured",
    );
    refused(
        &[("a", &format!("succeeds = \"a\"\n{at}"))],
        "",
        "names the key itself",
    );
    refused(
        &[
            ("a", ""),
            ("b", &format!("succeeds = \"a\"\n{at}")),
            ("c", &format!("succeeds = \"a\"\n{at}")),
        ],
        "",
        "a key has one successor",
    );
    refused(
        &[
            ("a", ""),
            ("b", &format!("succeeds = \"a\"\n{at}")),
            ("c", &format!("succeeds = \"b\"\n{at}")),
        ],
        "",
        "activates at or before \"b\"",
    );
    refused(
        &[
            ("z", ""),
            (
                "a",
                "succeeds = \"b\"\nactivate_at = \"2027-01-01T00:00:00Z\"\n",
            ),
            (
                "b",
                "succeeds = \"a\"\nactivate_at = \"2027-02-01T00:00:00Z\"\n",
            ),
        ],
        "",
        "activates at or before",
    );
    refused(
        &[("a", ""), ("b", &format!("succeeds = \"a\"\n{at}"))],
        "[tsa]\nkey = \"b\"\n",
        "name the first key of the succession",
    );
    // A successor has the usage of the key it succeeds; seal keys roll over too.
    let seal = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
        [[keys]]\nlabel = \"s1\"\nusage = \"seal\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
        [[keys]]\nlabel = \"s2\"\nusage = \"seal\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
        succeeds = \"s1\"\nactivate_at = \"2027-04-01T00:00:00Z\"\n";
    let cfg = toml::from_str::<FileConfig>(seal)
        .unwrap()
        .resolve(&Overrides::default())
        .unwrap();
    assert_eq!(successors_of(&cfg.keys, "s1").len(), 1);
    let mixed = seal.replace("succeeds = \"s1\"", "succeeds = \"t1\"")
        + "[[keys]]\nlabel = \"t1\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n";
    let e = toml::from_str::<FileConfig>(&mixed)
        .unwrap()
        .resolve(&Overrides::default())
        .unwrap_err();
    assert!(format!("{e:#}").contains("a key of another usage"), "{e:#}");
}
