//! One module per command; each composes the stages it needs and turns their errors into
//! [`Failure`]s with hints. Nothing here talks to a terminal except through the [`Printer`].

mod adopt;
mod deploy;
mod dev;
mod doctor;
mod down;
mod history;
mod logs;
mod messages;
mod open;
mod preflight;
mod rbac;
mod render;
mod revision;
mod rollback;
mod status;

use std::sync::OnceLock;

use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::outcome::{Exit, Failure};
use crate::ui::Printer;

/// Runs the parsed command line; the result is the exit code, or a failure to report.
pub async fn run(cli: Cli, printer: &Printer) -> Result<Exit, Failure> {
    // Commands that change the cluster finish a change before stopping; the others just stop.
    if matches!(
        cli.command,
        Command::Up(_)
            | Command::Upgrade(_)
            | Command::Rollback(_)
            | Command::Down(_)
            | Command::Adopt(_)
    ) {
        listen_for_interrupts();
    }
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
        Command::Adopt(args) if args.values_only => {
            adopt::values_only(&cli.global, args, printer).await
        }
        Command::Adopt(args) => {
            let args = args.deploy_args();
            deploy::run(&cli.global, &args, deploy::Mode::Up, &env, printer).await
        }
        Command::Dev(args) => dev::run(&cli.global, args, &env, printer).await,
        Command::Logs(args) => logs::run(&cli.global, args, &env, printer).await,
        Command::Rbac(args) => rbac::run(&cli.global, args, printer),
        Command::Doctor(args) => doctor::run(&cli.global, args, &env, printer).await,
        Command::Open(args) => open::run(&cli.global, args, printer).await,
    }
}

/// Ctrl-C, seen by every stage: set once by the listener [`run`] installs.
static INTERRUPT: OnceLock<watch::Receiver<bool>> = OnceLock::new();

/// From here on Ctrl-C never kills the process in the middle of a change: it is noted, and the
/// next wait (build, load, rollout) stops at it. A second Ctrl-C exits at once.
fn listen_for_interrupts() {
    INTERRUPT.get_or_init(|| {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = sender.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(Exit::Interrupted.code());
                }
            }
        });
        receiver
    });
}

/// Completes once Ctrl-C was pressed (at once if it already was): what a wait races against.
pub(crate) async fn interrupted() {
    match INTERRUPT.get() {
        Some(receiver) => {
            let mut receiver = receiver.clone();
            let _ = receiver.wait_for(|pressed| *pressed).await;
        }
        None => std::future::pending().await,
    }
}

/// The plan of a command that writes no Secret, and its cluster: how `status` and `history` start.
pub(crate) async fn plan_and_cluster(
    global: &crate::cli::GlobalArgs,
    events: &crate::ui::Events,
) -> Result<(crate::plan::Plan, crate::cluster::Cluster), Failure> {
    let flags = crate::settings::CommandFlags::default();
    let plan =
        crate::settings::resolve(global, &flags, crate::settings::Purpose::Inspect, &|_| None)?;
    let cluster = crate::cluster::connect(&plan.cluster, events).await?;
    Ok((plan, cluster))
}

/// `value` as pretty JSON with a final newline, for `-o json`.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|json| json + "\n")
        .map_err(|error| Failure::new(Exit::Failed, error, None))
}

/// `value` as YAML, for `-o yaml`.
pub(crate) fn to_yaml(value: &impl serde::Serialize) -> Result<String, Failure> {
    serde_saphyr::to_string(value).map_err(|error| Failure::new(Exit::Failed, error, None))
}
