//! `todo-deploy`: parse the command line, install the error reporter, run the command, and map
//! the outcome to an exit code. The only place that prints errors.

use std::io::IsTerminal;

use clap::Parser;

use todo_deploy::outcome::Exit;
use todo_deploy::ui::Verbosity;
use todo_deploy::{cli, commands, ui};

fn main() {
    // Errors are for users: no backtrace unless asked for with `RUST_LIB_BACKTRACE=1`, even
    // when `RUST_BACKTRACE` is set for panics.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: nothing else runs yet: the runtime and its threads start below.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = cli::Cli::parse();
    let color = !cli.global.no_color && std::env::var_os("NO_COLOR").is_none();
    let printer = ui::Printer::new(
        verbosity(&cli.global),
        color,
        std::io::stderr().is_terminal(),
    );
    let hook = color_eyre::config::HookBuilder::default().display_env_section(false);
    let hook = if printer.color {
        hook
    } else {
        hook.theme(color_eyre::config::Theme::new())
    };
    if let Err(error) = hook.install() {
        eprintln!("todo-deploy: cannot install the error reporter: {error}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("todo-deploy: cannot start the async runtime: {error}");
            std::process::exit(Exit::Failed.code());
        }
    };
    let exit = match runtime.block_on(commands::run(cli, &printer)) {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("Error: {:?}", failure.report);
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
