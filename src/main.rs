//! `todo-deploy`: parse the command line, resolve how to print, run the command, print its
//! failure (through the [`ui::Printer`]) and map the outcome to an exit code.

use std::io::IsTerminal;

use clap::Parser;

use todo_deploy::outcome::{Exit, Failure};
use todo_deploy::ui::Verbosity;
use todo_deploy::{cli, commands, ui};

fn main() {
    let cli = cli::Cli::parse();
    let color = !cli.global.no_color && std::env::var_os("NO_COLOR").is_none();
    let printer = ui::Printer::new(
        verbosity(&cli.global),
        color,
        std::io::stderr().is_terminal(),
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.failure(&Failure::new(Exit::Failed, error, None));
            std::process::exit(Exit::Failed.code());
        }
    };
    let exit = match runtime.block_on(commands::run(cli, &printer)) {
        Ok(exit) => exit,
        Err(failure) => {
            printer.failure(&failure);
            failure.exit
        }
    };
    std::process::exit(exit.code());
}

/// `-q`, nothing, `-v`, `-vv`.
fn verbosity(global: &cli::GlobalArgs) -> Verbosity {
    match (global.quiet, global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, 1) => Verbosity::Verbose,
        (false, _) => Verbosity::Debug,
    }
}
