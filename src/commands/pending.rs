//! Commands whose stages are not built yet. They still resolve the configuration, so its errors
//! surface, and then say plainly what is missing and exit non-zero; none of them pretends.

use crate::cli::{Command, GlobalArgs};
use crate::outcome::{Exit, Failure};
use crate::settings::{self, CommandFlags, Secrets};

fn name(command: &Command) -> &'static str {
    match command {
        Command::Up(_) => "up",
        Command::Upgrade(_) => "upgrade",
        Command::Diff(_) => "diff",
        Command::Down(_) => "down",
        Command::Status(_) => "status",
        Command::History(_) => "history",
        Command::Rollback(_) => "rollback",
        Command::Render(_) => "render",
    }
}

pub fn release(global: &GlobalArgs, command: &Command) -> Result<Exit, Failure> {
    settings::resolve(global, &CommandFlags::default(), Secrets::KeysOnly, &|_| {
        None
    })?;
    Err(not_built(command, "release"))
}

fn not_built(command: &Command, stages: &str) -> Failure {
    Failure::message(
        Exit::Failed,
        format!(
            "`todo-deploy {}` is not available in this version: its {stages} stages are not built yet",
            name(command)
        ),
        Some("`todo-deploy render` prints the manifests; apply them with `kubectl apply --server-side -f -`".to_owned()),
    )
}
