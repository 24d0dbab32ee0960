//! One module per command; each composes the stages it needs and turns their errors into
//! [`Failure`]s with hints. Nothing here talks to a terminal except through the [`Printer`].

mod deploy;
mod down;
mod pending;
mod render;

use crate::cli::{Cli, Command};
use crate::outcome::{Exit, Failure};
use crate::ui::Printer;

/// Runs the parsed command line; the result is the exit code, or a failure to report.
pub async fn run(cli: Cli, printer: &Printer) -> Result<Exit, Failure> {
    let env = |key: &str| std::env::var(key).ok();
    match &cli.command {
        Command::Render(args) => render::run(&cli.global, args, &env, printer),
        Command::Up(args) => deploy::run(&cli.global, args, deploy::Mode::Up, &env, printer).await,
        Command::Upgrade(args) => {
            deploy::run(&cli.global, args, deploy::Mode::Upgrade, &env, printer).await
        }
        Command::Diff(args) => {
            deploy::run(&cli.global, args, deploy::Mode::Diff, &env, printer).await
        }
        Command::Down(args) => down::run(&cli.global, args, printer).await,
        Command::Status(_) | Command::History(_) | Command::Rollback(_) => {
            pending::release(&cli.global, &cli.command)
        }
    }
}
