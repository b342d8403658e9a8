//! `warroom`: the console (default), the gateway, and commands for scripts.
//! `args` says what the command line takes, `wiring` turns config and flags
//! into running objects, `commands` runs each command.

use std::process::ExitCode;

/// `print!` that returns the write error instead of panicking: a reader
/// that closes the pipe (`warroom export … | head -2`) ends the command
/// quietly, as with any Unix tool (see `run`).
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!($($arg)*))?
    };
}

/// `println!` that returns the write error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

mod args;
mod commands;
mod wiring;

use args::*;
use clap::Parser;
use commands::*;
use warroom::config::{Config, Paths};

/// `--gateway URL snapshot --width 80` as `snapshot --gateway URL --width
/// 80`: the command (and a subcommand of it) first, then every option in
/// the order given. `--config` may stay anywhere, but moves too.
fn options_after_command(args: &[String]) -> Vec<String> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let at = args.iter().position(|a| cli.find_subcommand(a).is_some());
    let Some(at) = at else {
        return args.to_vec();
    };
    let mut command = vec![args[at].clone()];
    let mut rest = args[at + 1..].to_vec();
    // `export tenant ID`, `keymap check FILE`: the subcommand leads too.
    if let Some(sub) = cli.find_subcommand(&args[at])
        && rest
            .first()
            .is_some_and(|a| sub.find_subcommand(a).is_some())
    {
        command.push(rest.remove(0));
    }
    command
        .into_iter()
        .chain(args[..at].iter().cloned())
        .chain(rest)
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect()
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() && cli.console != ConsoleArgs::default() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        eprintln!(
            "warroom: put options after the command name: `warroom {}`",
            options_after_command(&args).join(" ")
        );
        return ExitCode::from(2);
    }
    let paths = Paths::resolve(cli.config.clone());
    let cfg = match Config::load(&paths.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warroom: invalid config: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warroom: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            None => console(cli.console, cfg, paths).await,
            Some(Command::Console(args)) => console(args, cfg, paths).await,
            Some(Command::Gateway(args)) => gateway(args, cfg, paths).await,
            Some(Command::Snapshot(args)) => snapshot(args, cfg).await,
            Some(Command::Lookup(args)) => lookup(args, cfg).await,
            Some(Command::Export(cmd)) => export(cmd, cfg).await,
            Some(Command::Report(args)) => report(args, cfg).await,
            Some(Command::Publish(args)) => publish(args, cfg).await,
            Some(Command::Info(args)) => info(args, &cfg, &paths).await,
            Some(Command::Keymap(cmd)) => keymap_cmd(cmd),
            Some(Command::Drill(cmd)) => drill(cmd).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        // The reader went away (`| head`): nothing left to say to anyone.
        Err(e) if is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warroom: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
