//! The command line, as clap types only. Turning these raw flags into settings happens in
//! `settings.rs`, before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::LoaderKind;

/// Build, load and deploy the Todo AI Chatbot to a local Kubernetes cluster.
///
/// `todo-deploy up` builds both images, loads them into the cluster's node, applies every resource
/// with server-side apply and waits until the new pods are ready.
#[derive(Debug, Parser)]
#[command(
    name = "todo-deploy",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The configuration file.
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "TODO_DEPLOY_CONFIG",
        default_value = "config/todo-deploy.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// A YAML file merged over the configuration; repeat to merge several, in order.
    #[arg(short = 'f', long = "values", global = true, value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Set one configuration field, e.g. `--set services.backend.replicas=3`; applied after `--values`.
    #[arg(long = "set", global = true, value_name = "PATH=VALUE")]
    pub set: Vec<String>,

    /// An env file (`KEY=value` lines) with the secret values; the environment wins over it.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: the config's `cluster.context`, else the current one).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace to deploy to (default: the config's `namespace`).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,

    /// More output: `-v` streams build output and explains choices, `-vv` adds API calls.
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors and the final result.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,

    /// No colours (also when `NO_COLOR` is set).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, load, apply and wait: install the release, or upgrade it if it exists.
    Up(DeployArgs),
    /// Like `up`, for an existing release, usually with `--tag`.
    Upgrade(DeployArgs),
    /// Delete every resource of the release and wait until its pods are gone.
    Down(DownArgs),
    /// Show the release, its Deployments, pods, Services and Ingress.
    Status(StatusArgs),
    /// Print the manifests `up` would apply, as multi-document YAML.
    Render(RenderArgs),
    /// Show what `up` would change, resource by resource (Secret data masked).
    Diff(DeployArgs),
    /// List the release's revisions.
    History(StatusArgs),
    /// Re-deploy an earlier revision (default: the previous one).
    Rollback(RollbackArgs),
    /// Take over the release the old Helm chart (or `kubectl apply`) installed, with no downtime.
    Adopt(AdoptArgs),
    /// `up`, then watch the sources and the config: rebuild, load and roll out what changed on
    /// every save, with the pods' logs, until Ctrl-C.
    Dev(DevArgs),
    /// Print the logs of the release's pods, prefixed with service and pod.
    Logs(LogsArgs),
    /// Print the minimal Role and RoleBinding (YAML for `kubectl apply -f -`) that let a user or
    /// ServiceAccount run every command for this release in its namespace.
    Rbac(RbacArgs),
    /// Check everything `up` needs (Docker, the cluster, the loader, room for a rolling update,
    /// the ingress controller and host, the secret values, the images' users), with the fixes.
    Doctor(DoctorArgs),
    /// Open the app in the browser: the Ingress's URL, or a local gateway that routes by the
    /// Ingress's rules over port-forwards until Ctrl-C.
    Open(OpenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RbacArgs {
    /// Bind the Role to this ServiceAccount of the namespace (default: `todo-deploy`).
    #[arg(long, value_name = "NAME", conflicts_with = "user")]
    pub service_account: Option<String>,

    /// Bind the Role to this user (as the cluster authenticates it) instead.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Only print the URL; start no browser.
    #[arg(long)]
    pub print: bool,

    /// The local gateway's port on 127.0.0.1, when the Ingress is not reachable (0: any free one).
    #[arg(long, value_name = "N", default_value_t = 8080)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format: one line per check, or JSON/YAML for scripts.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// How images reach the cluster (default: the config's `cluster.loader`).
    #[arg(long, value_enum, value_name = "LOADER")]
    pub loader: Option<LoaderKind>,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The image tag to build and deploy (default: a tag derived from the build inputs).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Run every stage against the API server's dry run; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for the rollout, e.g. `5m`, `90s` (default: the config's `rollout.timeout`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Take ownership of fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,

    /// How images reach the cluster (default: the config's `cluster.loader`).
    #[arg(long, value_enum, value_name = "LOADER")]
    pub loader: Option<LoaderKind>,

    /// Keep a failed upgrade in place instead of rolling back.
    #[arg(long)]
    pub no_rollback: bool,

    /// Deploy the images as they are tagged, without building them.
    #[arg(long)]
    pub no_build: bool,

    /// How many revisions to keep in the release history (default: `rollout.historyMax`, 10).
    #[arg(long, value_name = "N")]
    pub history_max: Option<u32>,

    /// Take over objects with our names that another tool made (a Helm release, `kubectl
    /// apply`) instead of stopping; see `todo-deploy adopt`.
    #[arg(long)]
    pub adopt: bool,

    /// When taking over a Helm release: delete its records instead of marking them uninstalled.
    #[arg(long)]
    pub remove_helm_records: bool,

    /// Skip the checks `up` runs before it changes anything (room on the nodes for the rolling
    /// update; see `todo-deploy doctor`).
    #[arg(long)]
    pub skip_checks: bool,

    /// The Helm release `adopt --from-helm` names.
    #[arg(skip)]
    pub from_helm: Option<String>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The Helm release to take over: its objects, its last deployed revision (recorded as
    /// revision 0) and its records (marked uninstalled).
    #[arg(long, value_name = "RELEASE")]
    pub from_helm: Option<String>,

    /// Print the Helm release's settings as a todo-deploy values file (use it with `-f`) and
    /// change nothing.
    #[arg(long, requires = "from_helm")]
    pub values_only: bool,

    #[command(flatten)]
    pub deploy: DeployArgs,
}

impl AdoptArgs {
    /// What `up` runs with to take over.
    pub fn deploy_args(&self) -> DeployArgs {
        DeployArgs {
            adopt: true,
            from_helm: self.from_helm.clone(),
            ..self.deploy.clone()
        }
    }
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Deploy the configuration exactly as it is, without the dev profile (one replica per
    /// service, a startup probe in place of long initial delays).
    #[arg(long)]
    pub as_configured: bool,

    /// Run `down` when the loop stops (Ctrl-C), instead of leaving the release running.
    #[arg(long)]
    pub cleanup: bool,

    /// How long to wait for each rollout, e.g. `5m`, `90s` (default: the config's `rollout.timeout`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Take ownership of fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,

    /// How images reach the cluster (default: the config's `cluster.loader`).
    #[arg(long, value_enum, value_name = "LOADER")]
    pub loader: Option<LoaderKind>,

    /// Do not stream the pods' logs.
    #[arg(long)]
    pub no_logs: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The services whose pods to show (default: every service of the release).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,

    /// Keep following: new lines, pods that start later, containers that restart.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// A YAML file merged over the configuration, as everywhere else; here only as `--values`,
    /// since `-f` is `--follow` (as in `kubectl logs`).
    #[arg(long = "values", id = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Only lines newer than this, e.g. `10m`, `1h`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Only the last N lines of each container.
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,

    /// The last terminated container's log (after a crash), not the running one's.
    #[arg(long, conflicts_with = "follow")]
    pub previous: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete the release history.
    #[arg(long)]
    pub purge: bool,
    /// Also delete the namespace.
    #[arg(long)]
    pub delete_namespace: bool,
    /// Also remove every image the release's history names from the node (or the engine).
    #[arg(long)]
    pub prune_images: bool,
    /// How long to wait for the pods to go (default: the config's `rollout.timeout`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The image tag to render (default: a tag derived from the build inputs).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Print Secret values instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The revision to go back to (default: the previous deployed one).
    pub revision: Option<u32>,
    /// How long to wait for the rollout (default: the config's `rollout.timeout`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn adopt_is_up_taking_over_a_helm_release() {
        let cli = Cli::try_parse_from([
            "todo-deploy",
            "adopt",
            "--from-helm",
            "todo-app",
            "--tag",
            "v1",
        ])
        .unwrap();
        let Command::Adopt(args) = cli.command else {
            panic!("adopt");
        };
        let deploy = args.deploy_args();
        assert!(deploy.adopt);
        assert_eq!(deploy.from_helm.as_deref(), Some("todo-app"));
        assert_eq!(deploy.tag.as_deref(), Some("v1"));
        assert!(
            Cli::try_parse_from(["todo-deploy", "adopt", "--values-only"]).is_err(),
            "--values-only needs --from-helm"
        );
        assert!(
            Cli::try_parse_from(["todo-deploy", "up", "--from-helm", "x"]).is_err(),
            "not a flag of up"
        );
    }

    #[test]
    fn global_flags_work_after_the_command() {
        let cli = Cli::try_parse_from([
            "todo-deploy",
            "render",
            "-n",
            "dev",
            "--set",
            "a=1",
            "-f",
            "x.yaml",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("dev"));
        assert_eq!(cli.global.set, ["a=1"]);
        assert_eq!(cli.global.verbose, 2);
        assert!(matches!(cli.command, Command::Render(_)));
    }

    #[test]
    fn logs_takes_f_for_follow_and_values_by_its_long_name() {
        let cli = Cli::try_parse_from([
            "todo-deploy",
            "logs",
            "backend",
            "-f",
            "--values",
            "e2e.yaml",
            "--tail",
            "5",
        ])
        .unwrap();
        let Command::Logs(args) = &cli.command else {
            panic!("logs");
        };
        assert!(args.follow);
        assert_eq!(args.services, ["backend"]);
        let values: Vec<_> = args.values.iter().chain(&cli.global.values).collect();
        assert!(values.contains(&&PathBuf::from("e2e.yaml")), "{values:?}");
        assert_eq!(args.tail, Some(5));
    }
}
