//! `todo-deploy logs [SERVICE…] [-f] [--since D] [--tail N] [--previous]`: the release's pods'
//! logs on stdout, each line prefixed with its service and pod, secret values hidden (those of
//! the live Secret, and any the environment or env file holds). `-f` follows until Ctrl-C,
//! picking up pods that start later and containers that restart.

use crate::cli::{GlobalArgs, LogsArgs};
use crate::logs::{self, LogOptions, Redactor, Selection};
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::progress::Event;
use crate::ui::{Events, LogPrinter, Printer, Ui};
use crate::units::parse_duration;

pub async fn run(
    global: &GlobalArgs,
    args: &LogsArgs,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let since = match args.since.as_deref() {
        None => None,
        Some(text) => Some(parse_duration(text).map_err(|error| {
            Failure::message(
                Exit::Usage,
                format!("`--since {text}`: {error}"),
                [error.fix().to_owned()],
            )
        })?),
    };
    let options = LogOptions {
        since,
        tail: args.tail.map(i64::from),
        previous: args.previous,
        from_now: false,
    };
    // `-f` is `--follow` here: the values files come as `--values`.
    let mut global = global.clone();
    for file in &args.values {
        if !global.values.contains(file) {
            global.values.push(file.clone());
        }
    }
    Ui::around(printer, async |notes| {
        let (plan, cluster) = super::plan_and_cluster(&global, notes).await?;
        let selection = selection(&plan, args)?;
        let redactor =
            Redactor::new(logs::secret_values(&cluster, &plan.namespace, &plan.secret.name).await);
        redactor.add(local_secret_values(&plan, env));
        // Lines go to stdout as they come; everything else to the UI, on stderr.
        let (events, mut received) = Events::channel();
        let mut lines = LogPrinter::new(printer);
        let reading = async {
            let read = match args.follow {
                true => {
                    logs::follow(&cluster, &selection, &options, &redactor, &events).await;
                    Ok(())
                }
                false => logs::read(&cluster, &selection, &options, &redactor, &events).await,
            };
            drop(events);
            read
        };
        let showing = async {
            while let Some(event) = received.recv().await {
                match event {
                    Event::Logs(event) => lines.show(&event),
                    other => notes.send(other),
                }
            }
        };
        let (read, ()) = tokio::join!(reading, showing);
        read?;
        Ok(Exit::Success)
    })
    .await
}

/// The pods to show: every service's, or the named ones (which must be the config's).
fn selection(plan: &Plan, args: &LogsArgs) -> Result<Selection, Failure> {
    let known: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
    if let Some(unknown) = args.services.iter().find(|s| !known.contains(&s.as_str())) {
        return Err(Failure::message(
            Exit::Usage,
            format!("there is no service `{unknown}` in the configuration"),
            [format!("name one of: {}", known.join(", "))],
        ));
    }
    Ok(Selection {
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        services: args.services.clone(),
    })
}

/// The secret values this machine knows: the environment's and the env file's, for each key.
fn local_secret_values(plan: &Plan, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let from_file = plan
        .secret
        .env_file
        .as_deref()
        .and_then(|path| crate::secrets::read_env_file(path).ok())
        .unwrap_or_default();
    plan.secret
        .keys
        .iter()
        .flat_map(|key| {
            let file = from_file.get(key).map(|v| v.expose().to_owned());
            [env(key), file]
        })
        .flatten()
        .collect()
}
