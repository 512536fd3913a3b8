fn main() -> std::process::ExitCode {
    raftmha_node::cli::main_with_args(std::env::args_os().collect())
}
