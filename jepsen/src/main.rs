//! `raftmha-jepsen`: the chaos harness's command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use raftmha_jepsen::{checker, history};

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a recorded history: exit 0 valid, 1 invalid, 2 unknown.
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
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Raft leader re-election after SIGKILL of the leader; admin API commands/s.
    Election(raftmha_jepsen::bench::election::ElectionArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench(BenchCommand::Election(args)) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(raftmha_jepsen::bench::election::main(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
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
