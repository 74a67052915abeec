//! `lenspipe`: synthetic sweeps, SQL over sweeps, the pipeline stages and
//! the Paper IV parity table, embedded by default or on a Ballista cluster.

use std::path::PathBuf;
use std::process::ExitCode;

mod probe;
mod summary;
mod transfer;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::util::pretty::pretty_format_batches;
use lenspipe_plans::manifest::Section;
use lenspipe_plans::sink::{column_names, write, Location, WriteSpec};
use lenspipe_plans::stages::Stage;
use lenspipe_plans::{parity, Config, Engine, EngineKind, Error, Result};

/// `lenspipe --version`: the release and the commit it was built from.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        lenspipe_plans::manifest::GIT_COMMIT
    )
});

#[derive(Parser)]
#[command(
    name = "lenspipe",
    version = VERSION.as_str(),
    about = "Strong-lens training sets from DESI Legacy Imaging Surveys sweeps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ConfigArgs {
    /// Built-in profile (paper_iv, request_v1) or a YAML file.
    #[arg(long, default_value = "paper_iv")]
    config: String,
    /// Override a configuration key, e.g. --set selection.z_mag_max=20.5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run on a Ballista cluster instead of in-process, e.g. df://127.0.0.1:50050.
    #[arg(long, env = "LENSPIPE_SCHEDULER")]
    scheduler: Option<String>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config> {
        Config::load(&self.config, &self.overrides)
    }
    /// The engine the flags name, with `config`'s engine settings.
    async fn engine(&self, config: &Config) -> Result<Engine> {
        Engine::connect_with(
            EngineKind::from_flag(self.scheduler.as_deref()),
            &config.engine,
        )
        .await
    }
}

/// What `run` runs: one stage, the catalogue half, or every stage, in the
/// order and with the names of [`Stage::ALL`].
#[derive(Clone, Copy)]
enum Selection {
    One(Stage),
    Catalog,
    All,
}

impl Selection {
    fn stages(&self) -> &[Stage] {
        match self {
            Selection::One(stage) => std::slice::from_ref(stage),
            Selection::Catalog => &Stage::CATALOG,
            Selection::All => &Stage::ALL,
        }
    }
}

fn names(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ValueEnum for Selection {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: std::sync::OnceLock<Vec<Selection>> = std::sync::OnceLock::new();
        VARIANTS.get_or_init(|| {
            Stage::ALL
                .into_iter()
                .map(Selection::One)
                .chain([Selection::Catalog, Selection::All])
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Selection::One(stage) => PossibleValue::new(stage.name()),
            Selection::Catalog => PossibleValue::new("catalog")
                .help(format!("{}: the catalogue half", names(&Stage::CATALOG))),
            Selection::All => PossibleValue::new("all").help(names(&Stage::ALL)),
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write DR10-format synthetic sweep files.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 4)]
        files: usize,
        #[arg(long, default_value_t = 100_000)]
        rows_per_file: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Plant lens-galaxy sources at the positions of this lens catalog CSV.
        #[arg(long)]
        plant: Option<PathBuf>,
        #[arg(long, default_value = "RA [deg]")]
        plant_ra_column: String,
        #[arg(long, default_value = "DEC [deg]")]
        plant_dec_column: String,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run one SQL statement against table `sweeps`.
    Sql {
        /// The statement (or use -f).
        query: Option<String>,
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Write the result as Parquet under this URL instead of printing it.
        #[arg(long)]
        out: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run a pipeline stage.
    Run {
        #[arg(value_enum)]
        stage: Selection,
        #[command(flatten)]
        config: ConfigArgs,
        /// Exit non-zero when validation flags a shortcut (for training jobs that gate on it).
        #[arg(long)]
        fail_on_shortcut: bool,
        /// Print the run.json (every count, the configuration, versions) on
        /// stdout instead of one line per stage.
        #[arg(long)]
        json: bool,
    },
    /// Answer the Legacy Surveys viewer's cutout API (FITS and JPEG) from coadd bricks
    /// (or a synthetic sky), on loopback unless told otherwise.
    ServeCutouts {
        /// DR10 coadd root (`file://`, `s3://` or a path) holding coadd/ and survey-bricks.fits.gz.
        #[arg(
            long,
            conflicts_with = "synthetic_sky",
            required_unless_present = "synthetic_sky"
        )]
        coadds: Option<String>,
        /// Serve a deterministic synthetic sky with this seed instead of bricks.
        #[arg(long)]
        synthetic_sky: Option<u64>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
        /// Injected latency and faults, as JSON (see lenspipe_viewer::server::Faults).
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Injected latency per request in milliseconds (added to any in --faults).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Copy a file or a folder between local paths, file:// and s3:// URLs
    /// (S3 from the AWS_* environment), e.g. to load sweeps into a cluster's store.
    Cp { from: String, to: String },
    /// Exit 0 if `tcp://host:port` accepts a connection or `http://host:port/path`
    /// answers 2xx: a health check for images without a shell.
    Probe {
        target: String,
        #[arg(long, default_value_t = 3.0)]
        timeout_s: f64,
    },
    /// Print every selection parameter beside the request's value and its provenance.
    Parity {
        /// A run.json whose funnel fills the 'rows removed' column.
        #[arg(long)]
        run: Option<PathBuf>,
        #[arg(long, default_value = "paper_iv")]
        config: String,
    },
}

fn run_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id()
    )
}

async fn sql(query: String, out: Option<String>, args: ConfigArgs) -> Result<()> {
    let config = args.load()?;
    let engine = args.engine(&config).await?;
    engine.register_sweeps(&config).await?;
    let df = engine.ctx.sql(&query).await?;
    match out {
        None => {
            let batches = df.collect().await?;
            println!("{}", pretty_format_batches(&batches)?);
        }
        Some(url) => {
            let dir = Location::resolve(&engine.runtime(), &url)?;
            let columns = column_names(&df);
            let written = write(&engine, df, dir, &run_id(), |folder| {
                WriteSpec::new(folder, &columns)
            })
            .await?;
            let rows = written.summaries.rows_written;
            let files = written.commit_if(|_| Ok(())).await?;
            eprintln!("wrote {rows} rows in {} files under {url}", files.len());
        }
    }
    Ok(())
}

async fn run_stage(
    selection: Selection,
    args: ConfigArgs,
    fail_on_shortcut: bool,
    json: bool,
) -> Result<()> {
    let config = args.load()?;
    let engine = args.engine(&config).await?;
    // An output that takes no write, or a run.json there that does not
    // parse, stops the run before any work.
    let output = Location::resolve(&engine.runtime(), &config.output)?;
    engine.check_writable(&output).await?;
    lenspipe_plans::manifest::RunManifest::read(&output).await?;
    let id = run_id();
    let mut flagged: Vec<String> = Vec::new();
    for stage in selection.stages() {
        let started = std::time::Instant::now();
        tracing::info!(stage = %stage, engine = %engine.kind.describe(), "stage started");
        // Name the stage and the engine: a cluster's transport errors say neither.
        let section = stage.run(&engine, &config, &id).await.map_err(|e| {
            Error::Other(format!(
                "stage {stage} on {} failed: {e}",
                engine.kind.describe()
            ))
        })?;
        tracing::info!(
            stage = stage.name(),
            seconds = started.elapsed().as_secs_f64(),
            "stage finished"
        );
        if let Section::Validate(validate) = &section {
            flagged = validate.flagged.clone();
        }
        if !json {
            println!("{}", summary::stage_line(&section));
        }
    }
    let run_json = output.child("run.json");
    if json {
        let bytes = run_json
            .get_bytes()
            .await?
            .ok_or_else(|| Error::Other(format!("{} is missing after the run", run_json.url)))?;
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes)?;
        stdout.write_all(b"\n")?;
    } else {
        println!("{:<9} {} (every count: --json)", "run.json", run_json.url);
    }
    if fail_on_shortcut && !flagged.is_empty() {
        return Err(Error::Shortcut(format!(
            "validation flagged a shortcut between positives and negatives in {} (--fail-on-shortcut); see {}",
            flagged.join(", "),
            output.child("validation/shortcuts.json").url
        )));
    }
    Ok(())
}

async fn serve_cutouts(
    coadds: Option<String>,
    synthetic_sky: Option<u64>,
    bind: String,
    faults: Option<PathBuf>,
    latency_ms: u64,
) -> Result<()> {
    use lenspipe_viewer::server::{serve_until, CutoutProvider, Faults, ServerStats};
    let mut faults = match faults {
        Some(path) => Faults::from_path(&path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
        None => Faults::default(),
    };
    faults.latency_ms += latency_ms;
    let provider: std::sync::Arc<dyn CutoutProvider> = match (coadds, synthetic_sky) {
        (_, Some(seed)) => std::sync::Arc::new(lenspipe_synth::viewer_sky::SyntheticSky { seed }),
        (Some(root), None) => {
            let runtime =
                lenspipe_extensions::runtime_env(&datafusion::prelude::SessionConfig::new())?;
            let root = lenspipe_plans::sink::to_url(&root)?.to_string();
            std::sync::Arc::new(lenspipe_cutouts::bricks::BrickProvider::new(
                &runtime,
                &root,
                tokio::runtime::Handle::current(),
            )?)
        }
        (None, None) => return Err(Error::Config("give --coadds or --synthetic-sky".into())),
    };
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr()?;
    // The URL on stdout, alone on its line, for scripts and tests to read.
    println!("http://{addr}/viewer/fits-cutout");
    use std::io::Write;
    std::io::stdout().flush()?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve_until(
        listener,
        provider,
        faults,
        std::sync::Arc::new(ServerStats::default()),
        stop,
    )
    .await?;
    Ok(())
}

async fn main_inner(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Synth {
            out,
            files,
            rows_per_file,
            seed,
            plant,
            plant_ra_column,
            plant_dec_column,
            threads,
        } => {
            let mut opts = lenspipe_synth::SynthOptions::new(out);
            opts.files = files;
            opts.rows_per_file = rows_per_file;
            opts.seed = seed;
            opts.plant = plant;
            opts.plant_ra_column = plant_ra_column;
            opts.plant_dec_column = plant_dec_column;
            if let Some(t) = threads {
                opts.threads = t;
            }
            let started = std::time::Instant::now();
            let report = lenspipe_synth::run(&opts).map_err(|e| Error::Other(e.to_string()))?;
            let seconds = started.elapsed().as_secs_f64();
            let bytes: u64 = report.files.iter().map(|f| f.bytes).sum();
            let rows: u64 = report.files.iter().map(|f| f.rows).sum();
            println!(
                "wrote {} files, {rows} rows, {:.1} MB in {seconds:.1} s ({:.0} MB/s) to {}",
                report.files.len(),
                bytes as f64 / 1e6,
                bytes as f64 / 1e6 / seconds.max(1e-9),
                opts.out_dir.display()
            );
            Ok(())
        }
        Command::Sql {
            query,
            file,
            out,
            config,
        } => {
            let query = match (query, file) {
                (Some(q), None) => q,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", f.display())))?,
                _ => {
                    return Err(Error::Config(
                        "give the SQL as an argument or with -f FILE, not both".into(),
                    ))
                }
            };
            sql(query, out, config).await
        }
        Command::Run {
            stage,
            config,
            fail_on_shortcut,
            json,
        } => run_stage(stage, config, fail_on_shortcut, json).await,
        Command::ServeCutouts {
            coadds,
            synthetic_sky,
            bind,
            faults,
            latency_ms,
        } => serve_cutouts(coadds, synthetic_sky, bind, faults, latency_ms).await,
        Command::Cp { from, to } => {
            let runtime =
                lenspipe_extensions::runtime_env(&datafusion::prelude::SessionConfig::new())?;
            let started = std::time::Instant::now();
            let copied = transfer::copy(&runtime, &from, &to).await?;
            eprintln!(
                "copied {} objects, {:.1} MB in {:.1} s to {to}",
                copied.objects,
                copied.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Probe { target, timeout_s } => probe::probe(
            &target,
            std::time::Duration::from_secs_f64(timeout_s.max(0.01)),
        ),
        Command::Parity { run, config } => {
            let ours = Config::load(&config, &[])?;
            let request = Config::load("request_v1", &[])?;
            let run = run
                .map(|path| lenspipe_plans::manifest::RunManifest::read_path(&path))
                .transpose()?;
            println!("{}", parity::render(&ours, &request, run.as_ref())?);
            Ok(())
        }
    }
}

/// What this process read and wrote in all (files and sockets), from
/// Linux's `/proc/self/io`: the measure that a client on a cluster stays
/// small (RUST_LOG=lenspipe::io=info shows it; bench/cluster.sh uses it).
/// With it, from `/proc/self/status`, the peak resident memory and what is
/// resident at exit split into heap (anonymous) and mapped file pages, so a
/// benchmark can tell which of the two grows.
fn log_process_io() {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    tracing::info!(
        target: "lenspipe::io",
        read_bytes = field(&io, "rchar:"),
        written_bytes = field(&io, "wchar:"),
        peak_rss_kib = field(&status, "VmHWM:"),
        anon_rss_kib = field(&status, "RssAnon:"),
        file_rss_kib = field(&status, "RssFile:"),
        "process io"
    );
}

fn main() -> ExitCode {
    lenspipe_extensions::memory::return_large_blocks();
    tracing_subscriber::fmt()
        .with_env_filter(
            // The job id a cluster gives each plan, so a run can be found in the scheduler's UI and logs.
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,ballista_core::execution_plans::distributed_query=info".into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lenspipe: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(main_inner(cli));
    log_process_io();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lenspipe: {e}");
            match e {
                // A closed gate is not a failed run: scripts can tell them apart.
                Error::Shortcut(_) => ExitCode::from(SHORTCUT_EXIT),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// The exit status of a run that completed but flagged a shortcut under
/// `--fail-on-shortcut`.
const SHORTCUT_EXIT: u8 = 3;
