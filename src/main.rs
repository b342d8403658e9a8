//! `warroom`: the console (default), the gateway, and commands for scripts
//! (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
