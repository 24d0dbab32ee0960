//! `todo-deploy`: parse the command line, run the command, print its failure (through the
//! [`ui::Printer`]) and map the outcome to an exit code.

use clap::Parser;

use todo_deploy::outcome::{Exit, Failure};
use todo_deploy::{cli, commands, ui};

fn main() {
    let cli = cli::Cli::parse();
    let printer = ui::Printer::new(&cli.global, std::env::var_os("NO_COLOR").is_some());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            let failure = Failure::new(Exit::Failed, error, None);
            printer.failure(&failure);
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
