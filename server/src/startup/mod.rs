//! Start-up of `hanko serve`: from the command line to a bound listener, in named steps.
//!
//! ```text
//!   serve_command: config file (+ flags) ─> logging ─> plan: production | dev
//!        (production: Config resolved, PIN checked, SOFTHSM2_CONF; dev: data dir
//!         prepared, SOFTHSM2_CONF) ─> tokio runtime ─> serve_async:
//!   open_token (production: Hsm::open; dev: dev::init) ─> keys::load_keys
//!        ─> open_log ─> suspensions read, every key gated (suspension.rs) ─> audit:
//!        key-loaded, certificate-expiring ─> issuance::build_issuer ─> seal::Sealer ─> AppState
//!        ─> start_anchoring ─> bind ─> audit: service-started ─> serve::run
//!        ─> anchoring stopped (tasks joined) ─> audit: service-stopped ─> serve::release
//! ```
//!
//! The listeners are bound in `listen.rs`, the parts built from the configuration once the
//! keys are loaded (sealer options, verifier, renewer, anchoring, the HTTPS key) in
//! `parts.rs`; this file runs the steps in order.
//!
//! Everything that changes the process environment (`SOFTHSM2_CONF`) happens in
//! `serve_command`, before the runtime starts threads. A step that fails stops the
//! start-up with an error naming what to fix; nothing is served before every key passed
//! its checks.

mod listen;
mod parts;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_hsm::{Hsm, ModuleConfig, Pin};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::cli::ServeArgs;
use crate::config::{self, Config, FileConfig, Overrides};
use crate::entry::{init_logging, runtime_with};
use crate::state::AppState;
use crate::suspension::{self, Suspensions};
use crate::{audit, dev, http, issuance, keys, seal, serve};
use listen::bind;
use parts::{
    load_tls_key, renewer, sealer_options, start_anchoring, start_renewal, verifier, visible_seals,
};

/// Where `serve` gets its configuration and token from, decided before the runtime
/// starts.
#[allow(
    clippy::large_enum_variant,
    reason = "one value, built once at start-up"
)]
enum Plan {
    /// Production: a checked configuration (from `path`) and the PIN from the
    /// environment.
    Production {
        cfg: Config,
        pin: Pin,
        path: std::path::PathBuf,
    },
    /// Dev: the data directory is prepared; the config is read after dev-init, and the
    /// PIN is the dev token's (`<data-dir>/dev-pin`).
    Dev {
        paths: dev::DevPaths,
        report: dev::Report,
        /// `--config`, read, and its path.
        file: Option<(FileConfig, std::path::PathBuf)>,
    },
}

/// `hanko serve`: everything up to the runtime, then [`serve_async`]. `env_pin` is what
/// [`Pin::take_from_env`] found at start; only production uses it.
pub(crate) fn serve_command(
    args: ServeArgs,
    env_pin: Result<Pin, hanko_hsm::Error>,
) -> anyhow::Result<()> {
    let overrides = args.overrides();
    let file = match &args.config {
        Some(path) => Some(FileConfig::load(path)?),
        None => None,
    };
    let dev = args.dev || file.as_ref().and_then(|f| f.dev).unwrap_or(false);
    let log_format = args
        .log_format
        .or(file.as_ref().and_then(|f| f.log.format))
        .unwrap_or_default();
    let log_filter = file
        .as_ref()
        .and_then(|f| f.log.filter.clone())
        .unwrap_or_else(|| "info".to_owned());
    init_logging(log_format, &log_filter);
    let file = file.zip(args.config.clone());
    let plan = if dev {
        dev_plan(file, &overrides)?
    } else {
        production_plan(file, &overrides, env_pin)?
    };
    let rt = runtime_with(plan.runtime_threads()?)?;
    rt.block_on(serve_async(plan, overrides))
}

impl Plan {
    /// `http.threads` of the configuration the server will run with; in dev mode
    /// [`dev::DEV_RUNTIME_THREADS`] when it sets none (or before dev-init wrote one).
    fn runtime_threads(&self) -> anyhow::Result<Option<usize>> {
        match self {
            Plan::Production { cfg, .. } => Ok(cfg.http.threads),
            Plan::Dev { paths, file, .. } => {
                let set = match dev::existing_config(paths, file.as_ref().map(|(f, _)| f.clone()))?
                {
                    Some(f) => config::runtime_threads(&f.http)?,
                    None => None,
                };
                Ok(Some(set.unwrap_or(dev::DEV_RUNTIME_THREADS)))
            }
        }
    }
}

/// `serve --dev`: the data directory prepared and `SOFTHSM2_CONF` pointed at it.
fn dev_plan(
    file: Option<(FileConfig, std::path::PathBuf)>,
    overrides: &Overrides,
) -> anyhow::Result<Plan> {
    let data_dir = overrides
        .data_dir
        .clone()
        .or_else(|| file.as_ref().and_then(|(f, _)| f.data_dir.clone()))
        .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into());
    let paths = dev::DevPaths::new(&data_dir)?;
    let mut report = dev::Report::default();
    dev::prepare(&paths, &mut report)?;
    hanko_hsm::use_softhsm_config(&paths.softhsm_conf);
    Ok(Plan::Dev {
        paths,
        report,
        file,
    })
}

/// Production `serve`: the checked configuration and the PIN, `SOFTHSM2_CONF` if set.
fn production_plan(
    file: Option<(FileConfig, std::path::PathBuf)>,
    overrides: &Overrides,
    env_pin: Result<Pin, hanko_hsm::Error>,
) -> anyhow::Result<Plan> {
    let Some((file, path)) = file else {
        bail!(
            "no configuration: production mode needs --config FILE (start from \
             ops/hanko.example.toml); for a local development server use `hanko serve --dev`"
        );
    };
    let cfg = file.resolve(overrides)?;
    let pin =
        env_pin.context("the token PIN comes from HANKO_PIN or HANKO_PIN_FILE (never a flag)")?;
    if let Some(conf) = &cfg.softhsm2_conf {
        hanko_hsm::use_softhsm_config(conf);
    }
    Ok(Plan::Production { cfg, pin, path })
}

fn install_metrics() -> Option<PrometheusHandle> {
    // Latency histograms (not summaries) so that several nodes can be aggregated. From
    // 100 µs: a signature on a local HSM and a request's stages are below a millisecond.
    const SECONDS: [f64; 15] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        10.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
        .and_then(|b| b.install_recorder());
    match builder {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics disabled");
            None
        }
    }
}

fn dev_banner(cfg: &Config) {
    tracing::warn!("==================================================================");
    tracing::warn!("WARNING: DEVELOPMENT MODE (--dev). NOT FOR PRODUCTION.");
    tracing::warn!(
        "The dev CA keys are files and the token PIN is in {}.",
        cfg.data_dir.join("dev-pin").display()
    );
    tracing::warn!("Nothing signed by this server may be relied upon.");
    tracing::warn!("==================================================================");
}

/// Opens the token the plan names: the configured one in production, the dev token
/// (after dev-init) in dev mode. Returns the configuration to run with, the logged-in
/// token, the module and token actually opened, and what a reload reads again (the file
/// and the flags).
async fn open_token(
    plan: Plan,
    overrides: Overrides,
) -> anyhow::Result<(Config, Hsm, ModuleConfig, (std::path::PathBuf, Overrides))> {
    match plan {
        Plan::Production { cfg, pin, path } => {
            let module = cfg.module.clone();
            let opened = module.clone();
            let hsm = tokio::task::spawn_blocking(move || Hsm::open(opened, pin))
                .await
                .context("HSM open task")?
                .context("cannot open the HSM token")?;
            Ok((cfg, hsm, module, (path, overrides)))
        }
        Plan::Dev {
            paths,
            mut report,
            file,
        } => {
            // The module the configuration names (`--config`, else the data directory's
            // hanko.toml once it exists), so that `hsm.module` means the same in dev mode
            // as in production; SoftHSM when unset.
            let path = file
                .as_ref()
                .map_or_else(|| paths.config_file.clone(), |(_, p)| p.clone());
            let file = dev::existing_config(&paths, file.map(|(f, _)| f))?;
            let module = dev::dev_module(file.as_ref());
            tracing::warn!(
                module = %module.module_path.display(),
                "development mode: running dev-init in {}",
                paths.data_dir.display()
            );
            let hsm = dev::init(&paths, &module, dev::KeySet::Standard, &mut report).await?;
            if !report.created_anything() {
                tracing::info!("dev-init: everything existed and was reused");
            }
            let file = match file {
                Some(f) => f,
                None => FileConfig::load(&paths.config_file)?,
            };
            let mut overrides = overrides;
            overrides.dev = true;
            overrides.data_dir = Some(paths.data_dir.clone());
            overrides.dev_tls_files = Some(paths.tls_server_files());
            let cfg = file.resolve(&overrides)?;
            dev_banner(&cfg);
            Ok((cfg, hsm, module, (path, overrides)))
        }
    }
}

/// Opens the issuance log, with the signing pools as its upstream: it holds a batch open
/// for more records only while the signers are backlogged.
async fn open_log(
    cfg: &Config,
    backlog: keys::SigningBacklog,
) -> anyhow::Result<hanko_store::Store> {
    tracing::info!(
        database = %hanko_store::redact_url(&cfg.store.database_url),
        node = %cfg.store.options.node_id,
        "opening the issuance log"
    );
    let mut store_options = cfg.store.options.clone();
    store_options.upstream = Some(Arc::new(backlog));
    hanko_store::Store::open(&cfg.store.database_url, store_options)
        .await
        .context("cannot open the issuance log")
}

/// Histograms need periodic upkeep when nobody scrapes for a while; the keys' gauges
/// (`keys::export_key_metrics`) count down with the clock.
fn spawn_metrics_upkeep(metrics: Option<PrometheusHandle>, state: Arc<AppState>) {
    metrics::gauge!("hanko_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Plain data and a weak reference, not the keys: a task holding the signers would
    // keep their pools (and the token) alive past the release at shutdown. The gauges
    // are taken again when a reload adds keys.
    let state = Arc::downgrade(&state);
    let gauges = move || -> Option<Vec<keys::KeyGauges>> {
        let state = state.upgrade()?;
        Some(state.keys().iter().map(keys::KeyGauges::of).collect())
    };
    if let Some(h) = metrics {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut keys = Vec::new();
            loop {
                tick.tick().await;
                if let Some(now) = gauges() {
                    keys = now;
                }
                keys::export_key_metrics(&keys, std::time::SystemTime::now());
                h.run_upkeep();
            }
        });
    }
}

async fn serve_async(plan: Plan, overrides: Overrides) -> anyhow::Result<()> {
    let metrics = install_metrics();
    let (cfg, hsm, module, reload_source) = open_token(plan, overrides).await?;
    let released = hsm.release_watch();
    let result = serve_with_token(metrics, cfg, hsm, module, reload_source).await;
    if result.is_err() {
        // A start that failed after the token was opened: its signing pools are dropped
        // by now, but their threads leave the PKCS#11 module on their own; exiting under
        // them crashes in the module (exit by signal instead of status 2), as the clean
        // shutdown's release (`serve::release`) knows.
        let _ = tokio::task::spawn_blocking(move || released.wait(Duration::from_secs(5))).await;
    }
    result
}

/// [`serve_async`] once the token is open.
async fn serve_with_token(
    metrics: Option<PrometheusHandle>,
    cfg: Config,
    hsm: Hsm,
    module: ModuleConfig,
    reload_source: (std::path::PathBuf, Overrides),
) -> anyhow::Result<()> {
    tracing::info!(
        module = %module.module_path.display(),
        token = %module.token_label,
        keys = cfg.keys.len(),
        "loading signing keys"
    );
    let (keys, backlog) = keys::load_keys(&hsm, &cfg.keys, &cfg.pool).await?;
    let tls_key = load_tls_key(&cfg, &hsm).await?;
    let store = open_log(&cfg, backlog).await?;
    // The emergency stop gates every key from here on (suspension.rs), before anything
    // can sign with it.
    let labels = keys.iter().map(|k| k.label().to_owned()).collect();
    let suspensions = Suspensions::load(&store, labels).await?;
    let keys = suspension::gate_keys(keys, &suspensions);
    let poller = suspensions.spawn_poller(store.clone());
    audit::record_start(&store, &keys).await?;
    let node = cfg.store.options.node_id.clone();
    // Which key signs and serves what now, and the rollovers to come (`keys.succeeds`).
    let mut plan = crate::rollover::StartPlan::new(
        &cfg.keys,
        cfg.tsa.as_ref(),
        &keys,
        std::time::SystemTime::now(),
    )?;
    let issuer = match &cfg.tsa {
        Some(settings) => Some(Arc::new(issuance::build_issuer(
            &cfg, settings, &mut plan, &store,
        )?)),
        None => None,
    };
    let reloader = crate::reload::Reloader::new(
        reload_source.0,
        reload_source.1,
        node.clone(),
        cfg.data_dir.clone(),
    )
    .context("configuration reload")?;
    let sealer = seal::Sealer::with_options(
        &keys,
        store.clone(),
        issuer.clone(),
        cfg.store.serial_block,
        std::time::SystemTime::now(),
        cfg.dev,
        seal::SealerOptions {
            rollover: Some(plan.seal.clone()),
            ..sealer_options(&cfg)
        },
    )
    .context("seal credentials")?;
    let visible = visible_seals(&sealer, &cfg)?;
    let sealer = Arc::new(sealer.with_visible_seals(visible));
    let rollover = Arc::new(crate::rollover::Rollover::new(
        issuer.clone(),
        Some(sealer.clone()),
        store.clone(),
        node.clone(),
        &plan,
    ));
    let mut verifier = verifier(&cfg, &keys);
    let batches = Arc::new(crate::anchor::evidence::BatchCache::default());
    if cfg.anchor.enabled {
        verifier = verifier.with_evidence(Arc::new(crate::anchor::evidence::LogEvidence::new(
            store.clone(),
            cfg.anchor.clone(),
            batches.clone(),
        )));
    }
    let renewal = renewer(&cfg, &keys, issuer.as_ref());
    let state = Arc::new(AppState {
        dev: cfg.dev,
        hsm: Some(hsm),
        keys: crate::state::KeyRing::new(keys),
        metrics: metrics.clone(),
        issuer,
        sealer: Some(sealer),
        store: Some(store.clone()),
        clients: cfg.clients.clone(),
        limits: Arc::new(http::Limits::new(&cfg.http)),
        csc_info: cfg.csc.clone(),
        verifier: Arc::new(verifier),
        anchor: cfg.anchor.enabled.then(|| cfg.anchor.clone()),
        archive: cfg.anchor.enabled.then(|| {
            Arc::new(crate::archive::Archive::new(
                store.clone(),
                cfg.archive,
                cfg.anchor.clone(),
                cfg.store.serial_block,
            ))
        }),
        batches,
        renewal,
        suspensions,
        rollover: Some(rollover),
        reloader: Some(Arc::new(reloader)),
    });
    spawn_metrics_upkeep(metrics, state.clone());
    let anchoring = start_anchoring(&cfg, &state, &store)?;
    let renewal = start_renewal(&cfg, &state, &store)?;
    // Signals are handled from here on, before the address is announced.
    let shutdown = serve::shutdown_signal()?;
    // Recorded before the listeners announce themselves, so that every start's events
    // precede what it issues.
    audit::record(&store, audit::service_started(&node))
        .await
        .context("cannot record the start in the issuance log")?;
    let listeners = match bind(&cfg, tls_key.clone()).await {
        Ok(l) => l,
        Err(e) => {
            let stopped = audit::service_stopped(&node, "start-up failed: cannot listen");
            if let Err(e) = audit::record(&store, stopped).await {
                tracing::error!(error = %e, "cannot record the stop in the issuance log");
            }
            return Err(e);
        }
    };
    let watchers = audit::spawn_watchers(&store, &state, state.issuer.as_ref());
    // Started once nothing else can fail the start: both hold signers (the reloads the
    // whole state), and a start that fails after them would exit with pools still
    // running inside the PKCS#11 module (a crash instead of exit status 2).
    let rollovers = state.rollover.as_ref().map(|r| r.spawn());
    let reloads = match crate::reload::Reloader::spawn_on_sighup(state.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no reload on SIGHUP (hanko reload); \
                POST /api/v1/admin/reload still reloads");
            None
        }
    };
    // Without it only `hanko reload` is lost (SIGHUP and the admin API still reload).
    let pid_file = match crate::reload::PidFile::write(&cfg.data_dir) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "`hanko reload` will not find this server \
                (reload with SIGHUP or POST /api/v1/admin/reload)");
            None
        }
    };
    serve::run(listeners, state.clone(), shutdown, cfg.drain_timeout).await?;
    drop(pid_file);
    watchers.stop();
    // Both hold signers (the reloads the whole state): gone before the release.
    for task in rollovers.into_iter().chain(reloads) {
        task.abort();
        let _ = task.await;
    }
    if let Some(a) = anchoring {
        a.stop().await;
    }
    if let Some(r) = renewal {
        r.stop().await;
    }
    // The reloader keeps the TLS configuration (and so the key) alive: stop its pool
    // here, or its workers would hold the token past the release below.
    if let Some(k) = &tls_key {
        k.close();
    }
    if let Err(e) = audit::record(&store, audit::service_stopped(&node, "signal")).await {
        tracing::error!(error = %e, "cannot record the stop in the issuance log");
    }
    poller.abort();
    serve::release(state, store).await;
    tracing::info!("stopped");
    Ok(())
}
