//! `todo-deploy render`: the manifests `up` would apply, as multi-document YAML on stdout.

use crate::cli::{GlobalArgs, RenderArgs};
use crate::outcome::{Exit, Failure};
use crate::render::{self, SecretDisplay};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::Printer;

pub fn run(
    global: &GlobalArgs,
    args: &RenderArgs,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        tag: args.tag.as_deref(),
        ..Default::default()
    };
    let plan = settings::resolve(global, &flags, Purpose::Deploy, env)?;
    let manifests = render::render(&plan);
    let display = if args.show_secrets {
        SecretDisplay::Shown
    } else {
        SecretDisplay::Masked
    };
    let yaml = render::to_yaml(&manifests.all(), display)
        .map_err(|error| Failure::new(Exit::Failed, error, None))?;
    printer.data(&yaml);
    Ok(Exit::Success)
}
