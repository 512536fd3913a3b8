//! `raftmha`: the manager daemon (`raftmha manager`) and the admin CLI (every other
//! subcommand), one binary like etcd and etcdctl folded together.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = raftmha::cli::Cli::parse();
    raftmha::cli::run(cli)
}
