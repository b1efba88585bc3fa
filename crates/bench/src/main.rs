//! `mh-bench`: runs every scenario against a real `mh serve` on loopback and prints one table.
//!
//! ```text
//! cargo build --release --bin mh --bin mh-bench
//! target/release/mh-bench            # full suite (a few minutes on 2 cores)
//! target/release/mh-bench --quick    # every scenario for a couple of seconds (CI smoke run)
//! target/release/mh-bench --only fabric --seconds 5   # the end-to-end fabric scenarios alone
//! ```

mod baseline;
mod fabric;
mod gateway;
mod http;
mod load;
mod pipeline;
mod process;
mod scenarios;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scenarios::{Row, Settings};

#[derive(Parser)]
#[command(
    name = "mh-bench",
    about = "Benchmarks MessageHandler against a bare hyper baseline on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Internal>,
    /// Run each scenario for a couple of seconds only.
    #[arg(long)]
    quick: bool,
    /// Seconds per load scenario [default: 10, or 2 with --quick].
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Also write the results as a JSON array to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The mh binary to benchmark [default: next to mh-bench].
    #[arg(long)]
    mh: Option<PathBuf>,
    /// Extra flag for every `mh serve` the suite starts, e.g. `--serve-arg=--handler-batch-size=1000`
    /// (repeatable).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Run only these groups of scenarios (repeatable): baseline, gateway, fabric, auth, startup
    /// [default: all]. The ratios of a group need the group they compare with (gateway and auth:
    /// baseline; fabric: gateway's batch ingest) and are left out without it.
    #[arg(long, value_enum)]
    only: Vec<Group>,
    /// Package (zip) of the filter example for the WASM fabric scenario [default: built from
    /// examples/handlers/filter with `mh package build`].
    #[arg(long)]
    filter_package: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    Baseline,
    Gateway,
    Fabric,
    Auth,
    Startup,
}

/// Roles this binary plays as a child of the orchestrator.
#[derive(Subcommand)]
enum Internal {
    /// Generate load against one URL and print the measurements as JSON.
    #[command(hide = true)]
    Load(load::LoadArgs),
    /// Ingest into an endpoint and receive from its inbox, end to end, and print the measurements.
    #[command(hide = true)]
    Pipeline(pipeline::PipelineArgs),
    /// Serve the bare hyper baseline.
    #[command(hide = true)]
    BaselineServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Internal::Load(args)) => runtime().and_then(|rt| {
            let result = rt.block_on(load::run(args))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }),
        Some(Internal::Pipeline(args)) => runtime().and_then(|rt| {
            let result = rt.block_on(pipeline::run(args))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }),
        Some(Internal::BaselineServer { listen }) => {
            runtime().and_then(|rt| rt.block_on(baseline::serve(listen)))
        }
        None => run_suite(&cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn progress(text: &str) {
    eprintln!("[mh-bench] {text}");
    let _ = std::io::stderr().flush();
}

fn run_suite(cli: &Cli) -> anyhow::Result<()> {
    let settings = Settings {
        seconds: cli.seconds.unwrap_or(if cli.quick { 2.0 } else { 10.0 }),
        concurrency: cli.concurrency,
        mh: process::mh_binary(cli.mh.as_deref())?,
        serve_args: cli.serve_args.clone(),
    };
    let serve_args = if settings.serve_args.is_empty() {
        String::new()
    } else {
        format!(", mh serve ... {}", settings.serve_args.join(" "))
    };
    progress(&format!(
        "{} s per load scenario, {} connections, mh = {}{serve_args}",
        settings.seconds,
        settings.concurrency,
        settings.mh.display()
    ));
    let wants = |group: Group| cli.only.is_empty() || cli.only.contains(&group);
    let mut rows: Vec<Row> = Vec::new();

    let mut baseline_rate = None;
    if wants(Group::Baseline) {
        progress("baseline: bare hyper server answering 200");
        let baseline = scenarios::baseline(&settings)?;
        baseline_rate = Some(baseline.rate);
        rows.push(baseline);
    }

    let runtime = runtime()?;
    let mut batch_rate = None;
    if wants(Group::Gateway) {
        progress("gateway: setting up an account, channel, endpoint and device");
        let gateway = gateway::set_up(&settings, &runtime)?;
        progress("gateway: single-message ingest with a device token");
        rows.push(gateway::single_ingest(&settings, &gateway, baseline_rate)?);
        progress("gateway: batch ingest, JSON arrays of 1000 messages");
        let batch = gateway::batch_ingest(&settings, &gateway, baseline_rate)?;
        batch_rate = Some(batch.rate);
        rows.push(batch);
        progress("gateway: endpoint inbox, received and completed by a consumer");
        rows.push(gateway::inbox_round_trip(&settings, &gateway, &runtime)?);
    }

    if wants(Group::Fabric) {
        // End to end through a deployed handler; compared with batch ingest alone.
        match fabric::filter_package(&settings, cli.filter_package.as_deref())? {
            Some(zip) => rows.push(fabric::scenario(
                &settings,
                &runtime,
                &fabric::Handler::Filter(zip),
                batch_rate,
            )?),
            None => progress("fabric: WASM filter scenario skipped (see the note above)"),
        }
        rows.push(fabric::scenario(
            &settings,
            &runtime,
            &fabric::Handler::Forward,
            batch_rate,
        )?);
    }

    if wants(Group::Auth) {
        progress("token endpoint: POST /authorize");
        rows.push(scenarios::authorize(&settings, baseline_rate)?);
        progress("bearer verification (in process)");
        rows.push(scenarios::bearer_verification(&settings)?);
    }
    if wants(Group::Startup) {
        progress("start-up time and idle memory");
        let (startup, idle) =
            scenarios::startup_and_idle(&settings, if cli.quick { 3 } else { 7 })?;
        rows.push(startup);
        rows.push(idle);
    }

    print_table(&rows);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
        progress(&format!("wrote {}", path.display()));
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let cell = |v: Option<f64>, precision: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.precision$}"))
    };
    let width = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(0)
        .max(26);
    println!(
        "{:<width$} {:>12} {:<11} {:>8} {:>8} {:>8} {:>10} {:>9} {:>7}  target",
        "scenario", "rate", "unit", "p50 ms", "p99 ms", "p999 ms", "CPU s/M", "peak MiB", "ratio"
    );
    for row in rows {
        let verdict = match row.met {
            Some(true) => " (met)",
            Some(false) => " (NOT met)",
            None => "",
        };
        println!(
            "{:<width$} {:>12.1} {:<11} {:>8} {:>8} {:>8} {:>10} {:>9} {:>7}  {}{}",
            row.scenario,
            row.rate,
            row.unit,
            cell(row.p50_ms, 3),
            cell(row.p99_ms, 3),
            cell(row.p999_ms, 3),
            cell(row.cpu_s_per_million, 1),
            cell(row.peak_rss_mib, 1),
            cell(row.ratio, 2),
            row.target,
            verdict
        );
    }
    for row in rows {
        if let Some(detail) = &row.detail {
            println!("\n{}: {detail}", row.scenario);
        }
    }
}
