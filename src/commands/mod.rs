//! One module per command; each composes the stages it needs and turns their errors into
//! [`Failure`]s with hints. Nothing here talks to a terminal except through the [`Printer`].

mod deploy;
mod down;
mod history;
mod messages;
mod render;
mod revision;
mod rollback;
mod status;

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
        Command::Down(args) => down::run(&cli.global, args, &env, printer).await,
        Command::Status(args) => status::run(&cli.global, args, printer).await,
        Command::History(args) => history::run(&cli.global, args, printer).await,
        Command::Rollback(args) => rollback::run(&cli.global, args, printer).await,
    }
}

/// Completes on Ctrl-C: what a wait races against.
pub(crate) async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The plan of a command that writes no Secret, and its cluster: how `status` and `history` start.
pub(crate) async fn plan_and_cluster(
    global: &crate::cli::GlobalArgs,
    events: &crate::ui::Events,
) -> Result<(crate::plan::Plan, crate::cluster::Cluster), Failure> {
    let flags = crate::settings::CommandFlags::default();
    let plan =
        crate::settings::resolve(global, &flags, crate::settings::Secrets::KeysOnly, &|_| {
            None
        })?;
    let cluster = crate::cluster::connect(&plan.cluster, events).await?;
    Ok((plan, cluster))
}
