//! `todo-deploy doctor [-o json]`: every check `up` depends on, one line each with the fix,
//! changing nothing. Exit 0 unless a check is an error (then 1). The checks live in
//! [`crate::doctor`]; this composes them in order and prints the report.

use crate::cli::{DoctorArgs, GlobalArgs, OutputFormat};
use crate::doctor::{Check, Finding, Report, probe};
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::{Events, Printer, Ui};

pub async fn run(
    global: &GlobalArgs,
    args: &DoctorArgs,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let report = Ui::around(printer, async |events| {
        gather(global, args, env, events).await
    })
    .await;
    let text = match args.output {
        OutputFormat::Json => super::to_json(&report)?,
        OutputFormat::Yaml => super::to_yaml(&report)?,
        OutputFormat::Table => report.to_lines(),
    };
    printer.data(&text);
    Ok(match report.has_errors() {
        true => Exit::Failed,
        false => Exit::Success,
    })
}

/// The plan to check: the configuration as `up` reads it (image tags from the build inputs),
/// without needing the secret values, which the secrets check judges on its own.
fn plans(
    global: &GlobalArgs,
    args: &DoctorArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Finding> {
    let flags = CommandFlags {
        loader: args.loader,
        ..Default::default()
    };
    let any_value = |key: &str| Some(env(key).unwrap_or_else(|| "-".to_owned()));
    match settings::resolve(global, &flags, Purpose::Deploy, &any_value) {
        Ok(plan) => Ok(plan),
        Err(_) => settings::resolve(global, &flags, Purpose::Inspect, &|_| None)
            .map_err(|error| Finding::from_error(Check::Config, &error)),
    }
}

async fn gather(
    global: &GlobalArgs,
    args: &DoctorArgs,
    env: &dyn Fn(&str) -> Option<String>,
    events: &Events,
) -> Report {
    let (docker_finding, docker) = probe::docker(env).await;
    let mut findings = vec![docker_finding];
    let plan = match plans(global, args, env) {
        Ok(plan) => plan,
        Err(finding) => {
            findings.push(finding);
            return Report::new(findings);
        }
    };
    let (cluster_findings, cluster) = probe::cluster(&plan, events).await;
    findings.extend(cluster_findings);
    match &cluster {
        Some(cluster) => {
            let (loader, _) = probe::loader(docker.as_ref(), &plan, cluster, env, events).await;
            findings.extend(loader);
            let rendered = crate::render::render(&plan);
            let (capacity, nodes) = probe::capacity(cluster, &plan, &rendered.objects).await;
            findings.push(capacity);
            let minikube = probe::is_minikube(&nodes);
            findings.extend(crate::doctor::ingress::check(cluster, &plan, &nodes, minikube).await);
        }
        None => {
            for check in [
                Check::Permissions,
                Check::Loader,
                Check::Capacity,
                Check::Ingress,
            ] {
                findings.push(Finding::skipped(
                    check,
                    "needs the cluster, which does not answer",
                ));
            }
        }
    }
    findings.extend(secrets(&plan, env));
    findings.extend(probe::image_users(docker.as_ref(), &plan).await);
    Report::new(findings)
}

fn secrets(plan: &Plan, env: &dyn Fn(&str) -> Option<String>) -> Vec<Finding> {
    let from_file = match plan
        .secret
        .env_file
        .as_deref()
        .map(crate::secrets::read_env_file)
    {
        Some(Ok(values)) => values,
        Some(Err(error)) => return vec![Finding::from_error(Check::Secrets, &error)],
        None => Default::default(),
    };
    let example = crate::doctor::secrets::find_example(plan);
    crate::doctor::secrets::check(plan, env, &from_file, example.as_ref())
}
