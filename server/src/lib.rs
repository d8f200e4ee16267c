//! `hanko-server`: the `hanko` binary's library — configuration, CLI, start-up checks,
//! the HTTP front and the wiring of the other crates.
//!
//! This is the only crate where PKCS#11, HTTP and (later) SQL meet. Protocol crates
//! (`hanko-tsa`, `hanko-seal`) get a [`hanko_pki::Signer`] and return bytes; this crate
//! decides which key, which HTTP status, and when the process is ready.
//!
//! # Layout
//! - [`cli`]: clap flags; [`config`]: TOML + flags -> checked [`config::Config`].
//! - [`dev`]: `hanko dev-init` (SoftHSM token, keys in it, dev CA, certificates).
//! - [`keys`]: the start-up gate for signing keys (certificate checks, key attributes,
//!   probe signature).
//! - [`state`]: [`state::AppState`], shared by handlers.
//! - [`http`]: the router; one file per endpoint family.
//! - [`run`]: the accept loop with graceful shutdown, mini-redis style.
//!
//! ```text
//!   main ─> cli::Cli ─> config (+ dev::prepare, SOFTHSM2_CONF) ─> tokio runtime
//!        ─> [dev::init] ─> Hsm::open ─> keys::load_keys ─> AppState ─> bind ─> run()
//!                                                                   SIGINT/SIGTERM ┘
//! ```
//!
//! # What it does not do
//! No protocol logic (that is `hanko-tsa` / `hanko-seal`), no TLS yet (terminate it in
//! front, or wait for the TLS issue), no key generation in production (keys come from a
//! key ceremony; `dev-init` is for development only).
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use hanko_hsm::{Hsm, Pin};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod dev;
pub mod http;
pub mod issuance;
pub mod keys;
pub mod log_cli;
pub mod state;

use crate::cli::{Cli, Command, DevInitArgs, ServeArgs};
use crate::config::{Config, FileConfig, LogFormat};
use crate::state::AppState;

/// Serves HTTP on `listener` until `shutdown` completes, then stops accepting, lets
/// requests in flight finish for up to `drain_timeout`, and returns. The caller drops
/// the state afterwards, which stops the HSM signing pools.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let app = http::router(state);
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining requests in flight");
        let _ = draining_tx.send(());
    };
    // The peer address is the rate limit's client key (http/limits.rs).
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal);
    let drain_deadline = async move {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = serve => r.context("HTTP server failed")?,
        () = drain_deadline => {
            tracing::warn!(timeout = ?drain_timeout, "drain timeout: closing remaining connections");
        }
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (systemd stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// The binary's entry point: parses the command line, runs the command, and maps the
/// outcome to an exit code (0 ok, 2 error, like ripgrep). Errors print their whole
/// chain on stderr.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve_command(args),
        Command::DevInit(args) => dev_init_command(args),
        Command::Stamp(args) => return client::stamp_main(args),
        Command::Verify(args) => return client::verify_main(args),
        Command::Log(args) => return log_cli::log_command(args),
        Command::ApiKey(args) => auth::api_key_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    // RUST_LOG wins over the configured filter. cryptoki logs every mechanism id it has
    // no name for at ERROR level while listing a token's mechanisms; that is noise, not an
    // error, so it is off unless the filter names cryptoki.
    let mut directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| filter.to_owned());
    if !directives.contains("cryptoki") {
        directives = format!("cryptoki::mechanism=off,{directives}");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("hanko: ignoring bad log filter {directives:?}: {e}");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hanko-rt")
        .build()
        .context("cannot start the async runtime")
}

fn dev_init_command(args: DevInitArgs) -> anyhow::Result<()> {
    init_logging(args.log_format.unwrap_or_default(), "info");
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into());
    let paths = dev::DevPaths::new(&data_dir)?;
    let mut report = dev::Report::default();
    dev::prepare(&paths, &mut report)?;
    // Before any thread exists (no runtime yet): SoftHSM reads it in C_Initialize.
    hanko_hsm::use_softhsm_config(&paths.softhsm_conf);
    let module = dev::dev_module(dev::existing_config(&paths, None)?.as_ref());
    let rt = runtime()?;
    let hsm = rt.block_on(dev::init(&paths, &module, &mut report))?;
    drop(hsm);
    print!("{}", report.summary(&paths));
    Ok(())
}

/// Where `serve` gets its configuration from, decided before the runtime starts.
#[allow(
    clippy::large_enum_variant,
    reason = "one value, built once at start-up"
)]
enum Plan {
    /// Production: a checked configuration.
    Production(Config),
    /// Dev: the data directory is prepared; the config is read after dev-init.
    Dev {
        paths: dev::DevPaths,
        report: dev::Report,
        file: Option<FileConfig>,
    },
}

fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
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

    let plan = if dev {
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| file.as_ref().and_then(|f| f.data_dir.clone()))
            .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into());
        let paths = dev::DevPaths::new(&data_dir)?;
        let mut report = dev::Report::default();
        dev::prepare(&paths, &mut report)?;
        hanko_hsm::use_softhsm_config(&paths.softhsm_conf);
        Plan::Dev {
            paths,
            report,
            file,
        }
    } else {
        let Some(file) = file else {
            bail!(
                "no configuration: production mode needs --config FILE (start from \
                 ops/hanko.example.toml); for a local development server use `hanko serve --dev`"
            );
        };
        let cfg = file.resolve(&overrides)?;
        if let Some(conf) = &cfg.softhsm2_conf {
            hanko_hsm::use_softhsm_config(conf);
        }
        Plan::Production(cfg)
    };
    let rt = runtime()?;
    rt.block_on(serve_async(plan, overrides))
}

fn install_metrics() -> Option<PrometheusHandle> {
    // Latency histograms (not summaries) so that several nodes can be aggregated.
    const SECONDS: [f64; 12] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
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

async fn serve_async(plan: Plan, overrides: config::Overrides) -> anyhow::Result<()> {
    let metrics = install_metrics();
    // `module` is the module and token actually opened (logged below).
    let (cfg, hsm, module) = match plan {
        Plan::Production(cfg) => {
            let pin = Pin::from_env()
                .context("the token PIN comes from HANKO_PIN or HANKO_PIN_FILE (never a flag)")?;
            let module = cfg.module.clone();
            let opened = module.clone();
            let hsm = tokio::task::spawn_blocking(move || Hsm::open(opened, pin))
                .await
                .context("HSM open task")?
                .context("cannot open the HSM token")?;
            (cfg, hsm, module)
        }
        Plan::Dev {
            paths,
            mut report,
            file,
        } => {
            // The module the configuration names (`--config`, else the data directory's
            // hanko.toml once it exists), so that `hsm.module` means the same in dev mode
            // as in production; SoftHSM when unset.
            let file = dev::existing_config(&paths, file)?;
            let module = dev::dev_module(file.as_ref());
            tracing::warn!(
                module = %module.module_path.display(),
                "development mode: running dev-init in {}",
                paths.data_dir.display()
            );
            let hsm = dev::init(&paths, &module, &mut report).await?;
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
            let cfg = file.resolve(&overrides)?;
            dev_banner(&cfg);
            (cfg, hsm, module)
        }
    };
    tracing::info!(
        module = %module.module_path.display(),
        token = %module.token_label,
        keys = cfg.keys.len(),
        "loading signing keys"
    );
    let (keys, backlog) = keys::load_keys(&hsm, &cfg.keys, &cfg.pool).await?;
    tracing::info!(
        database = %hanko_store::redact_url(&cfg.store.database_url),
        node = %cfg.store.options.node_id,
        "opening the issuance log"
    );
    // The log holds a batch open for more records only while the signers are backlogged.
    let mut store_options = cfg.store.options.clone();
    store_options.upstream = Some(Arc::new(backlog));
    let store = hanko_store::Store::open(&cfg.store.database_url, store_options)
        .await
        .context("cannot open the issuance log")?;
    let issuer = match &cfg.tsa {
        Some(settings) => Some(Arc::new(build_issuer(&cfg, settings, &keys, &store)?)),
        None => None,
    };
    let state = Arc::new(AppState {
        dev: cfg.dev,
        hsm: Some(hsm),
        keys,
        metrics: metrics.clone(),
        issuer,
        store: Some(store.clone()),
        api_keys: cfg.api_keys.clone(),
        limits: Arc::new(http::Limits::new(&cfg.http)),
    });
    metrics::gauge!("hanko_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    if let Some(h) = metrics {
        // Histograms need periodic upkeep when nobody scrapes for a while.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                h.run_upkeep();
            }
        });
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr: SocketAddr = listener.local_addr().context("local address")?;
    tracing::info!(
        max_in_flight = cfg.http.max_in_flight,
        rate_limit_per_sec = cfg.http.rate_limit.map(|r| r.per_sec.get()),
        rate_limit_burst = cfg.http.rate_limit.map(|r| r.burst.get()),
        "admission control of the signing routes"
    );
    tracing::info!(%addr, dev = cfg.dev, "listening on {addr}");
    run(
        listener,
        state.clone(),
        shutdown_signal(),
        cfg.drain_timeout,
    )
    .await?;
    // Handlers are gone; dropping the last reference stops the signing pools and
    // closes their sessions.
    let hsm_released = state.hsm.as_ref().map(hanko_hsm::Hsm::release_watch);
    match Arc::try_unwrap(state) {
        Ok(state) => drop(state),
        Err(still_shared) => {
            tracing::warn!("requests still hold the state after the drain; dropping anyway");
            drop(still_shared);
        }
    }
    // Every response that was sent had its record committed; closing flushes nothing
    // that a client relies on, it only ends the writer task cleanly.
    store.close().await;
    // Do not exit while signing workers still run inside the PKCS#11 module: process
    // exit tears down the module's globals under them.
    if let Some(watch) = hsm_released {
        let released = tokio::task::spawn_blocking(move || watch.wait(HSM_RELEASE_WAIT))
            .await
            .unwrap_or(false);
        if !released {
            tracing::warn!(
                waited = ?HSM_RELEASE_WAIT,
                "signing workers still hold the token (a call hangs in the HSM); exiting anyway"
            );
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long shutdown waits for the signing workers to leave the PKCS#11 module.
const HSM_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Builds the time-stamp authority: profile, clock guard over the configured source,
/// serials from the issuance log, and one unit per policy (certificate and key checked).
pub fn build_issuer(
    cfg: &Config,
    settings: &config::TsaSettings,
    keys: &[state::SigningKey],
    store: &hanko_store::Store,
) -> anyhow::Result<issuance::Issuer> {
    use hanko_tsa::{ClockGuard, ClockGuardConfig, TimeStampUnit, Tsa};
    let mut guard = ClockGuardConfig::for_accuracy(settings.profile.accuracy);
    guard.settle = settings.clock_settle;
    guard.dev_mode = cfg.dev;
    let clock = ClockGuard::new(settings.clock_source.start(), guard);
    let serials = Arc::new(issuance::StoreSerials::new(
        store,
        &settings.serial_counter,
        cfg.store.serial_block,
    ));
    let tsa = Arc::new(
        Tsa::new(settings.profile.clone(), clock, serials).context("time-stamp authority")?,
    );
    let now = std::time::SystemTime::now();
    let mut units: Vec<(String, Arc<TimeStampUnit>)> = Vec::new();
    let mut policy_units = Vec::new();
    for (policy, label) in &settings.units {
        let unit = match units.iter().find(|(l, _)| l == label) {
            Some((_, u)) => u.clone(),
            None => {
                let key = keys
                    .iter()
                    .find(|k| k.label() == label)
                    .with_context(|| format!("TSA key \"{label}\" is not loaded"))?;
                let unit = TimeStampUnit::new(key.signer().clone(), key.chain().to_vec(), now)
                    .with_context(|| format!("TSA key \"{label}\""))?;
                let unit = Arc::new(unit);
                units.push((label.clone(), unit.clone()));
                unit
            }
        };
        tsa.install_unit(policy, unit.clone())
            .with_context(|| format!("TSA policy {policy}"))?;
        policy_units.push(issuance::PolicyUnit {
            policy: policy.clone(),
            key: label.clone(),
            unit,
        });
        tracing::info!(%policy, key = %label, "time-stamp policy served");
    }
    if let Err(e) = tsa.check_ready() {
        tracing::warn!(error = %e, "the TSA cannot issue yet");
    }
    let issuer = issuance::Issuer::new(
        tsa,
        units.into_iter().map(|(_, u)| u).collect(),
        store.clone(),
    )
    .with_disclosure(policy_units, settings.clock_source.name());
    if cfg.store.durability == config::Durability::None {
        // resolve() refuses this outside --dev.
        tracing::warn!("==================================================================");
        tracing::warn!("store.durability = \"none\": TOKENS ARE NOT LOGGED (dev/benchmark only)");
        tracing::warn!("==================================================================");
        return Ok(issuer.without_log_appends_dev_only());
    }
    Ok(issuer)
}
