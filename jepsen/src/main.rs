//! `raftmha-jepsen`: the chaos harness's command line.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown (or bad arguments), 3 the harness itself failed.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use raftmha_jepsen::bench::failover::Kind;
use raftmha_jepsen::checker::{self, Verdict};
use raftmha_jepsen::run::{RunOptions, run};
use raftmha_jepsen::{history, scenario};

#[derive(Debug, Parser)]
#[command(
    name = "raftmha-jepsen",
    version,
    about = "Chaos harness and failover benchmarks for raftmha"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args, Clone)]
struct RunArgs {
    /// Seconds of faults after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Where run folders go.
    #[arg(long, default_value = "target/jepsen-runs")]
    out: PathBuf,
    /// Address of the first database node of the run (the run uses three consecutive ones).
    #[arg(long, default_value = "127.0.170.10")]
    base_ip: Ipv4Addr,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 2)]
    clients: u32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the scenarios, one name per line.
    List {
        /// Also print what each scenario does.
        #[arg(long)]
        verbose: bool,
    },
    /// Run one scenario with one seed.
    Run {
        #[arg(long)]
        scenario: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run every scenario over a fixed seed list: --quick for CI, --full for soaks.
    Matrix {
        #[arg(long, conflicts_with = "full")]
        quick: bool,
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Check a recorded history.
    Check {
        /// A `history.jsonl` written by a run.
        history: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks on real processes.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serve the SIMULATED database servers (and their in-process agents) of a `bench scale`
    /// spec until stopped (the benchmark starts this itself).
    SimServers {
        #[arg(long)]
        spec: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Raft leader re-election after SIGKILL of the leader; admin API commands/s.
    Election(raftmha_jepsen::bench::election::ElectionArgs),
    /// Failover after SIGKILL of the master (needs the failover engine).
    Failover(raftmha_jepsen::bench::failover::FailoverArgs),
    /// Failover with the manager leader SIGKILLed once the failover started.
    LeaderCrash(raftmha_jepsen::bench::failover::FailoverArgs),
    /// Cost of watching N clusters (CPU, RSS, Raft traffic, snapshot, admin latency) and
    /// the failover of a real cluster meanwhile; simulated servers beyond the real ones.
    Scale(raftmha_jepsen::bench::scale::ScaleArgs),
    /// Planned switchovers under a writer: writes-blocked window, time to writable, lost writes.
    Switchover(raftmha_jepsen::bench::switchover::SwitchoverArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::List { verbose } => {
            for s in scenario::SCENARIOS {
                if verbose {
                    let outcome = if s.expects_failover {
                        "[fails over]"
                    } else {
                        "[no failover]"
                    };
                    println!("{:<30} {outcome} {}", s.name, s.about);
                } else {
                    println!("{}", s.name);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            scenario,
            seed,
            args,
        } => {
            let Some(sc) = scenario::find(&scenario) else {
                eprintln!("error: no scenario {scenario:?}; `raftmha-jepsen list` shows them");
                return ExitCode::from(2);
            };
            runtime.block_on(run_many(&[sc], &[seed], &args))
        }
        Command::Matrix { quick, full, args } => {
            let seeds = if full || !quick {
                scenario::FULL_SEEDS
            } else {
                scenario::QUICK_SEEDS
            };
            // Both run every scenario; --quick with one seed (CI), --full with three.
            let all: Vec<_> = scenario::SCENARIOS.iter().collect();
            runtime.block_on(run_many(&all, seeds, &args))
        }
        Command::Bench(BenchCommand::Election(args)) => {
            match runtime.block_on(raftmha_jepsen::bench::election::main(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(BenchCommand::Failover(args)) => {
            bench_failover(&runtime, Kind::Failover, args)
        }
        Command::Bench(BenchCommand::Switchover(args)) => {
            match runtime.block_on(raftmha_jepsen::bench::switchover::main(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(BenchCommand::Scale(args)) => {
            match runtime.block_on(raftmha_jepsen::bench::scale::main(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::SimServers { spec } => match runtime.block_on(raftmha_jepsen::sim::run(&spec)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(3)
            }
        },
        Command::Bench(BenchCommand::LeaderCrash(args)) => {
            bench_failover(&runtime, Kind::LeaderCrash, args)
        }
        Command::Check { history, json } => {
            let records = match history::read_history(&history) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    // Unreadable evidence decides nothing: unknown.
                    return ExitCode::from(2);
                }
            };
            let report = checker::check(&records);
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print!("{}", report.render());
            }
            ExitCode::from(report.verdict.exit_code())
        }
    }
}

fn bench_failover(
    runtime: &tokio::runtime::Runtime,
    kind: Kind,
    args: raftmha_jepsen::bench::failover::FailoverArgs,
) -> ExitCode {
    match runtime.block_on(raftmha_jepsen::bench::failover::main(kind, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs scenarios × seeds in sequence, prints one line per run and the worst verdict's code.
async fn run_many(scenarios: &[&scenario::Scenario], seeds: &[u64], args: &RunArgs) -> ExitCode {
    let mut worst = Verdict::Valid;
    let mut failures = Vec::new();
    for sc in scenarios {
        for &seed in seeds {
            let opts = RunOptions {
                seed,
                duration: Duration::from_secs(args.duration),
                out_root: args.out.clone(),
                base_ip: args.base_ip,
                clients: args.clients.max(1),
            };
            match run(sc, &opts).await {
                Ok(outcome) => {
                    let summary = outcome
                        .report
                        .check("no_acknowledged_write_lost")
                        .and_then(|c| c.details.first().cloned())
                        .unwrap_or_default();
                    println!(
                        "{:<26} seed {seed:<3} {:<8} {summary}  ({})",
                        sc.name,
                        format!("{:?}", outcome.verdict).to_lowercase(),
                        outcome.dir.display()
                    );
                    if outcome.verdict != Verdict::Valid {
                        print!("{}", outcome.report.render());
                        failures.push(outcome.reproduce.clone());
                    }
                    worst = worst.max(outcome.verdict);
                }
                Err(e) => {
                    println!("{:<26} seed {seed:<3} error    {e:#}", sc.name);
                    failures.push(raftmha_jepsen::run::reproduce_command(sc.name, &opts));
                    worst = worst.max(Verdict::Unknown);
                }
            }
        }
    }
    for f in &failures {
        println!("reproduce: {f}");
    }
    ExitCode::from(worst.exit_code())
}
