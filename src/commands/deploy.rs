//! `todo-deploy up`, `upgrade` and `diff`: one pipeline. Resolve the plan, connect to Docker and
//! the cluster; read what may refuse the run (permissions, room, history, another tool's
//! objects, the release lock) while the images build locally; only once nothing refused, load
//! or push them (and build in a node's engine); take the lock, then deploy the revision (apply,
//! prune, wait, record). A failed upgrade rolls back to the last deployed revision unless
//! `--no-rollback`. `--dry-run` and `diff` stop after a server-side dry run and show what would
//! change, taking no lock and recording nothing.

use std::collections::BTreeSet;

use crate::apply::{self, ApplyOptions, Change, Object};
use bollard::Docker;

use crate::build::{self, BuildOptions, BuiltImage};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::cluster::{self, Cluster};
use crate::config::LoaderKind;
use crate::docker;
use crate::load::registry::Target;
use crate::load::{self, Loader, NodeLoad};
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::release::{self, ImageRecord, Record, RevisionStatus, lock};
use crate::render::registry::{Pin, PullLogin};
use crate::render::{self, Kind, Manifest, ObjectKey, Rendered};
use crate::rollout::{self, Outcome};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::{Event, Events, Printer, Ui};

use super::adopt::{self, Adoption};
use super::messages;
use super::revision::{self, Deployed, Deployer, Revision};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Install, or upgrade what is there.
    Up,
    /// Upgrade a release that exists.
    Upgrade,
    /// Show what `up` would change, and change nothing.
    Diff,
}

impl Mode {
    /// Whether the run only shows what would change (`--dry-run`, `diff`).
    fn dry_run(self, args: &DeployArgs) -> bool {
        args.dry_run || self == Mode::Diff
    }
}

pub async fn run(
    global: &GlobalArgs,
    args: &DeployArgs,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        tag: args.tag.as_deref(),
        timeout: args.timeout.as_deref(),
        loader: args.loader,
        history_max: args.history_max,
    };
    // A run that builds needs Docker whatever the settings say: its connection starts first.
    let dry_run = mode.dry_run(args);
    let docker = (!dry_run && !args.no_build).then(|| docker::Connecting::start(env));
    let plan = settings::resolve(global, &flags, Purpose::Deploy, env)?;
    Ui::around(printer, async |events| {
        pipeline(&plan, args, mode, env, docker, events, printer).await
    })
    .await
}

async fn pipeline(
    plan: &Plan,
    args: &DeployArgs,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    docker: Option<docker::Connecting>,
    events: &Events,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let dry_run = mode.dry_run(args);
    let checked = connect(plan, args, mode, env, docker, events).await?;
    let rendered = render::render(plan);
    let objects: Vec<Object> = rendered.objects.iter().map(Object::from_manifest).collect();
    let namespace = Object::from_manifest(&Manifest::Namespace(rendered.namespace.clone()));
    // Everything that may refuse the run only reads the cluster; objects of ours another tool
    // made stop the run here, before anything changes.
    let cluster = &checked.cluster;
    let (passed, gate) = tokio::sync::watch::channel(None);
    let reads = async {
        let read = async {
            refusals(plan, args, mode, cluster, events).await?;
            let adoption = adopt::detect(plan, cluster, &objects, args, dry_run, events).await?;
            if !dry_run {
                lock::check(cluster, &plan.namespace, &plan.release, events).await?;
            }
            Ok::<_, Failure>(adoption)
        };
        let read = read.await;
        let _ = passed.send(Some(read.is_ok()));
        read
    };
    if dry_run {
        reads.await?;
        let rendered = as_deployed(cluster, plan, rendered).await;
        let objects: Vec<Object> = rendered.objects.iter().map(Object::from_manifest).collect();
        let release = (&namespace, objects.as_slice());
        return dry(cluster, plan, release, args, mode, events, printer).await;
    }
    // The local build starts beside the reads; a refusal stops it (in the engine too) and is
    // the run's error, even beside a build's.
    let gate = Gate(gate);
    let shipping = async {
        let shipped = ship(plan, args, env, &checked, &gate, events).await;
        if shipped.is_err() {
            gate.pass().await;
        }
        shipped
    };
    let (adoption, shipment) = tokio::try_join!(reads, shipping)?;
    // Pushed images are deployed by the digest the registry reported.
    let (rendered, objects) = match shipment.pins.is_empty() {
        true => (rendered, objects),
        false => {
            let pins = &shipment.pins;
            let pinned = render::registry::pinned(plan, rendered, pins, shipment.pull.as_ref());
            let objects = pinned.objects.iter().map(Object::from_manifest).collect();
            (pinned, objects)
        }
    };
    let shipped = Shipped {
        rendered: &rendered,
        namespace: &namespace,
        objects: &objects,
        built: &shipment.built,
        pins: &shipment.pins,
    };
    let adoption = adoption.as_ref();
    release(plan, args, env, &checked.cluster, shipped, adoption, events).await
}

/// A dry run pushes nothing: where the live Deployments run a digest pushed from the same tag,
/// they keep it, and their pull Secret (see [`render::registry::as_deployed`]). Nothing live
/// (or nothing readable) leaves `rendered` as it is.
async fn as_deployed(cluster: &Cluster, plan: &Plan, rendered: Rendered) -> Rendered {
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
    let deployments: kube::Api<Deployment> =
        kube::Api::namespaced(cluster.client.clone(), &plan.namespace);
    let selector = render::labels::release_selector(&plan.release);
    let live = match deployments
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list.items,
        Err(_) => return rendered,
    };
    let secrets: kube::Api<Secret> = kube::Api::namespaced(cluster.client.clone(), &plan.namespace);
    let name = render::registry::pull_secret_name(&plan.release);
    let secret = secrets.get_opt(&name).await.ok().flatten();
    render::registry::as_deployed(plan, rendered, &live, secret)
}

/// Opens once the reads that may refuse the run passed: what changes something outside this
/// machine's engine (a load into nodes, a push, a build in a node's engine) waits for it.
struct Gate(tokio::sync::watch::Receiver<Option<bool>>);

impl Gate {
    /// Returns once nothing refused the run; never, when something did (the refusal is then
    /// the run's error, and this future is dropped).
    async fn pass(&self) {
        let mut gate = self.0.clone();
        let passed = gate
            .wait_for(Option::is_some)
            .await
            .is_ok_and(|read| *read == Some(true));
        if !passed {
            std::future::pending::<()>().await;
        }
    }
}

/// What is known once everything that can be checked without changing anything was.
struct Checked {
    docker: Option<Docker>,
    cluster: Cluster,
}

/// Connects to Docker (when something is built or loaded; `early` if that connection was
/// started already) and to the cluster, both at once; a Docker failure is said first.
async fn connect(
    plan: &Plan,
    args: &DeployArgs,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    early: Option<docker::Connecting>,
    events: &Events,
) -> Result<Checked, Failure> {
    let dry_run = mode.dry_run(args);
    let needs_docker = !dry_run && (!args.no_build || loads(plan));
    let docker = async {
        match (early, needs_docker) {
            (Some(early), _) => early.finish(env, events).await.map(Some),
            (None, true) => docker::connect_saying(env, events).await.map(Some),
            (None, false) => Ok(None),
        }
    };
    let (docker, cluster) = tokio::join!(docker, cluster::connect(&plan.cluster, events));
    let docker = docker?;
    let cluster = cluster?;
    events.send(Event::Detail(format!(
        "cluster: context `{}` at `{}`",
        cluster.context, cluster.server
    )));
    Ok(Checked { docker, cluster })
}

/// The reads that refuse a run before anything changes: missing permissions, no room on the
/// nodes, an `upgrade` of a release that is not installed.
async fn refusals(
    plan: &Plan,
    args: &DeployArgs,
    mode: Mode,
    cluster: &Cluster,
    events: &Events,
) -> Result<(), Failure> {
    let dry_run = mode.dry_run(args);
    // What the credentials may not do, the room on the nodes and the release history are read
    // side by side, so the no-change path stays as fast; a missing permission is said first.
    let access = async {
        let command = match mode {
            Mode::Upgrade => crate::access::Command::Upgrade,
            Mode::Up | Mode::Diff => crate::access::Command::Up,
        };
        match dry_run {
            false => super::preflight::check(cluster, &plan.namespace, command, events).await,
            true => Ok(()),
        }
    };
    let checks = async {
        match !dry_run && !args.skip_checks {
            true => room_check(plan, cluster).await,
            false => Ok(()),
        }
    };
    let history = async {
        release::history(cluster, &plan.namespace, &plan.release, events)
            .await
            .map_err(Failure::from)
    };
    let (access, checks, history) = tokio::join!(access, checks, history);
    access?;
    checks?;
    let history = history?;
    if mode == Mode::Upgrade && history.is_empty() {
        return Err(Failure::message(
            Exit::Failed,
            format!(
                "release `{}` is not installed in namespace `{}`",
                plan.release, plan.namespace
            ),
            Some("install it with `todo-deploy up`".to_owned()),
        ));
    }
    Ok(())
}

/// `doctor`'s fast checks that the steps before the first change do not make on their own
/// (the cluster, the loader, the secrets and the configuration are checked as they are used):
/// room on the nodes for the rolling update. An error stops the run before anything changes
/// (a local build may have started, and is stopped).
async fn room_check(plan: &Plan, cluster: &Cluster) -> Result<(), Failure> {
    let rendered = render::render(plan);
    let (finding, _) = crate::doctor::probe::capacity(cluster, plan, &rendered.objects).await;
    if finding.level != crate::doctor::Level::Error {
        return Ok(());
    }
    let skip = "`todo-deploy doctor` runs every check; `--skip-checks` deploys anyway".to_owned();
    Err(Failure::message(
        Exit::Failed,
        finding.message,
        finding.fix.into_iter().chain([skip]),
    ))
}

/// Whether images are loaded onto the nodes.
fn loads(plan: &Plan) -> bool {
    !matches!(plan.cluster.loader, LoaderKind::None | LoaderKind::Docker)
}

/// What [`ship`] got where the cluster can run it.
#[derive(Default)]
struct Shipment {
    built: Vec<BuiltImage>,
    /// The digests pushed images are deployed by (empty unless a registry was pushed to).
    pins: Vec<Pin>,
    /// The login the nodes pull with, for the pull Secret.
    pull: Option<PullLogin>,
}

/// The loader: a registry the cluster publishes (KEP-1755) when no loader is configured, else
/// the one [`load::resolve`] picks.
async fn loader(
    docker: &Docker,
    plan: &Plan,
    checked: &Checked,
    env: &dyn Fn(&str) -> Option<String>,
    events: &Events,
) -> Result<Loader, Failure> {
    if plan.cluster.loader == LoaderKind::Auto
        && let Some(hosting) = load::read_hosting(&checked.cluster.client).await?
    {
        return Ok(load::published_registry(&hosting, env, events).await?);
    }
    let context = &checked.cluster.context;
    Ok(load::resolve(docker, &plan.cluster, context, env, events).await?)
}

/// Builds the images and gets them onto the nodes (or pushes them); nothing in the cluster
/// changes. The loader checks its nodes before a slow build, and may ask to build in their
/// engine (Minikube's).
async fn ship(
    plan: &Plan,
    args: &DeployArgs,
    env: &dyn Fn(&str) -> Option<String>,
    checked: &Checked,
    gate: &Gate,
    events: &Events,
) -> Result<Shipment, Failure> {
    let loader = match (&checked.docker, loads(plan)) {
        (Some(docker), true) => Some(loader(docker, plan, checked, env, events).await?),
        _ => None,
    };
    let engine = match (
        loader.as_ref().and_then(Loader::build_engine),
        &checked.docker,
    ) {
        (Some(endpoint), _) => {
            gate.pass().await;
            Some(endpoint.connect().await?)
        }
        (None, docker) => docker.clone(),
    };
    let interrupted = |stage: &str| {
        Failure::message(
            Exit::Interrupted,
            format!("interrupted while {stage}; nothing was changed in the cluster"),
            None,
        )
    };
    let Some(engine) = &engine else {
        return Ok(Shipment::default());
    };
    let (built, loaded) = match args.no_build {
        false => tokio::select! {
            shipped = build_then_load(engine, plan, loader.as_ref(), gate, events) => shipped?,
            _ = super::interrupted() => return Err(interrupted("building and loading images")),
        },
        true => {
            let built = existing_images(engine, plan, events).await;
            let loaded = match &loader {
                Some(loader) => tokio::select! {
                    loaded = async {
                        gate.pass().await;
                        load::load_all(engine, loader, &built, events).await
                    } => loaded?,
                    _ = super::interrupted() => return Err(interrupted("loading images")),
                },
                None => Vec::new(),
            };
            (built, loaded)
        }
    };
    let mut shipment = Shipment::default();
    if let Some(target) = loader.as_ref().and_then(Loader::registry) {
        shipment.pins = pins(&built, &loaded, target);
        shipment.pull = pull_login(target, events);
    }
    shipment.built = built;
    Ok(shipment)
}

/// Builds every image at once and loads each as soon as it is built (and `gate` passed), so
/// one image travels while another still builds. The first failure, of a build or a load, drops
/// the rest (their builds are stopped in the engine).
async fn build_then_load(
    engine: &Docker,
    plan: &Plan,
    loader: Option<&Loader>,
    gate: &Gate,
    events: &Events,
) -> Result<(Vec<BuiltImage>, Vec<NodeLoad>), Failure> {
    let options = BuildOptions::default();
    let each = plan.services.iter().map(|service| async {
        let built = build::build_one(engine, service, &options, events).await?;
        let loaded = match loader {
            Some(loader) => {
                gate.pass().await;
                load::load_next(engine, loader, &built, events).await?
            }
            None => Vec::new(),
        };
        Ok::<_, Failure>((built, loaded))
    });
    let shipped = futures_util::future::try_join_all(each).await?;
    let (built, loaded): (Vec<BuiltImage>, Vec<Vec<NodeLoad>>) = shipped.into_iter().unzip();
    Ok((built, loaded.into_iter().flatten().collect()))
}

/// Each pushed image's digest reference, and the tagged reference it was pushed as.
pub(super) fn pins(built: &[BuiltImage], loaded: &[NodeLoad], target: &Target) -> Vec<Pin> {
    loaded
        .iter()
        .filter_map(|load| {
            let image = &built.iter().find(|b| b.service == load.service)?.image;
            let path = image
                .repository
                .strip_prefix(&format!("{}/", target.push_to))
                .unwrap_or(&image.repository);
            Some(Pin {
                service: load.service.clone(),
                image: load.image.clone(),
                tagged: format!("{}/{path}:{}", target.pull_from, image.tag),
            })
        })
        .collect()
}

/// The login the nodes pull with: the one pushed with, when it is a user and password.
pub(super) fn pull_login(target: &Target, events: &Events) -> Option<PullLogin> {
    let login = target.login.as_ref()?;
    let Some((username, password)) = login.basic() else {
        events.send(Event::Warning(format!(
            "the login for `{}` is an identity token, which a kubelet cannot use: no pull Secret is made; give the nodes access to the registry",
            target.pull_from
        )));
        return None;
    };
    Some(PullLogin {
        registry: load::registry::credentials::host_of(&target.pull_from).to_owned(),
        username,
        password,
    })
}

/// What `release` deploys.
struct Shipped<'a> {
    rendered: &'a Rendered,
    namespace: &'a Object,
    objects: &'a [Object],
    built: &'a [BuiltImage],
    pins: &'a [Pin],
}

/// Changes the cluster: the namespace, then under the release lock the revision (apply, wait,
/// record), rolled back if it fails.
async fn release(
    plan: &Plan,
    args: &DeployArgs,
    env: &dyn Fn(&str) -> Option<String>,
    cluster: &Cluster,
    shipped: Shipped<'_>,
    adoption: Option<&Adoption>,
    events: &Events,
) -> Result<Exit, Failure> {
    // The lock lives in the namespace, so the namespace comes first.
    let options = ApplyOptions::default();
    let namespace = apply::namespace::ensure(cluster, shipped.namespace, options, events).await?;
    let lock = lock::acquire(cluster, &plan.namespace, &plan.release, events).await?;
    let force_conflicts = args.force_conflicts || adoption.is_some();
    let deployer = Deployer::new(cluster, plan, force_conflicts, events);
    let result = async {
        // Read again under the lock: another run may have deployed since the first look.
        let history = release::history(cluster, &plan.namespace, &plan.release, events).await?;
        let history = release::abandon_pending(cluster, &plan.namespace, history, events).await?;
        let new = |history: &[Record]| new_record(plan, history, &shipped);
        let (history, record) = match adoption {
            Some(adoption) => {
                let objects = shipped.objects;
                adopt::take_over(&deployer, plan, adoption, objects, history, new).await?
            }
            None => {
                let record = new(&history);
                (history, record)
            }
        };
        let current = history
            .last()
            .filter(|r| r.status == RevisionStatus::Deployed);
        let deployed = deployer
            .deploy(Revision {
                record,
                objects: shipped.objects,
                also_keep: None,
                applied_before: vec![namespace],
                current,
            })
            .await?;
        if deployed.outcome.lacks_an_image() {
            // The node lost an image it was remembered to hold: ask it again next time.
            let references: Vec<String> =
                plan.services.iter().map(|s| s.image.to_string()).collect();
            load::forget(env, &references);
        }
        conclude(&deployer, plan, args, &history, deployed).await
    }
    .await;
    lock.release().await;
    result
}

/// The revision this run deploys, numbered after `history`.
fn new_record(plan: &Plan, history: &[Record], shipped: &Shipped<'_>) -> Record {
    let installed = history.iter().any(|r| r.status == RevisionStatus::Deployed);
    Record {
        release: plan.release.clone(),
        revision: 0,
        status: RevisionStatus::Pending,
        time: String::new(),
        tool_version: String::new(),
        description: if installed { "Upgrade" } else { "Install" }.to_owned(),
        images: images(plan, shipped.built, shipped.pins),
        config_digest: plan.config_digest.clone(),
        manifests: release::redact_manifests(&shipped.rendered.all()),
    }
    .next_after(history)
}

/// What the end of the rollout means for the run: done, rolled back, or failed.
async fn conclude(
    deployer: &Deployer<'_>,
    plan: &Plan,
    args: &DeployArgs,
    history: &[Record],
    deployed: Deployed,
) -> Result<Exit, Failure> {
    let events = deployer.events;
    let revision = deployed.record.revision;
    let (what, mut standings) = match deployed.outcome.clone() {
        Outcome::Ready if !deployed.recorded => {
            events.send(Event::Info(format!(
                "release `{}` is up to date (revision {revision}) in namespace `{}`",
                plan.release, plan.namespace,
            )));
            return Ok(Exit::Success);
        }
        Outcome::Ready => {
            events.send(Event::Info(format!(
                "release `{}` revision {revision} is ready in namespace `{}` ({})",
                plan.release,
                plan.namespace,
                messages::summary(&deployed.report, false)
            )));
            return Ok(Exit::Success);
        }
        Outcome::Interrupted(standings) => return Err(messages::interrupted_failure(&standings)),
        Outcome::Unreachable { since, standings } => {
            return Err(messages::unreachable_failure(
                &deployer.cluster.server,
                since,
                &standings,
                deployed.recorded.then_some(revision),
            ));
        }
        Outcome::Failed(standings) => ("failed".to_owned(), standings),
        Outcome::TimedOut(standings) => (
            format!("did not finish within {}s", plan.timeout.as_secs()),
            standings,
        ),
    };
    let secrets: Vec<&str> = plan.secret.values.values().map(|v| v.expose()).collect();
    rollout::redact_logs(&mut standings, &secrets);
    let (message, mut hints) = messages::rollout_report(&what, &standings);
    if !deployed.recorded {
        // Nothing changed since the deployed revision: there is nothing to roll back.
        hints.push(format!(
            "nothing changed since revision {revision}, which is deployed but not healthy; `todo-deploy status` shows the pods"
        ));
        return Err(Failure::message(Exit::Failed, message, hints));
    }
    let last_good = history
        .iter()
        .rev()
        .find(|r| r.status == RevisionStatus::Deployed);
    let Some(last_good) = last_good.filter(|_| !args.no_rollback) else {
        if args.no_rollback {
            hints.push("the failed revision is left in place (`--no-rollback`); `todo-deploy rollback` goes back".to_owned());
        }
        return Err(Failure::message(Exit::Failed, message, hints));
    };
    let note = roll_back(deployer, &deployed, last_good, &mut hints).await?;
    Err(Failure::message(
        Exit::Failed,
        format!("{message}\n{note}"),
        hints,
    ))
}

/// The automatic rollback of a failed revision to `last_good`: its recorded objects, with the
/// Secret this run replaced (its values are stored nowhere else, but are still in memory).
/// Returns what to add to the failure's message; an interruption or a lost server ends the run.
async fn roll_back(
    deployer: &Deployer<'_>,
    deployed: &Deployed,
    last_good: &Record,
    hints: &mut Vec<String>,
) -> Result<String, Failure> {
    let revision = deployed.record.revision;
    deployer.events.send(Event::Warning(format!(
        "revision {revision} failed; rolling back to revision {}",
        last_good.revision
    )));
    let (mut objects, recorded_secret) = revision::recorded_objects(last_good, deployer.events);
    let previous_secret = deployed
        .report
        .applied
        .iter()
        .find(|a| a.key.kind == Kind::Secret)
        .and_then(|a| a.before.as_ref())
        .and_then(revision::secret_object);
    let keep = match &previous_secret {
        Some(secret) => Some(secret.key.clone()),
        None => recorded_secret,
    };
    objects.extend(previous_secret);
    objects.extend(pull_secret_kept(deployer, deployed));
    let record = Record {
        description: format!(
            "Rollback to {} (revision {revision} failed)",
            last_good.revision
        ),
        ..last_good.clone()
    }
    .next_after(std::slice::from_ref(&deployed.record));
    let rolled_back = deployer
        .deploy(Revision {
            record,
            objects: &objects,
            also_keep: keep,
            applied_before: Vec::new(),
            current: None,
        })
        .await;
    let failed_too = format!(
        "the rollback to revision {} failed as well",
        last_good.revision
    );
    match rolled_back.map(|d| d.outcome) {
        Ok(Outcome::Ready) => {
            deployer
                .mark(&deployed.record, RevisionStatus::RolledBack)
                .await?;
            Ok(format!(
                "rolled back to revision {} (recorded as revision {}); it is serving",
                last_good.revision,
                revision + 1
            ))
        }
        Ok(Outcome::Interrupted(standings)) => Err(messages::interrupted_failure(&standings)),
        Ok(Outcome::Unreachable { since, standings }) => Err(messages::unreachable_failure(
            &deployer.cluster.server,
            since,
            &standings,
            Some(revision + 1),
        )),
        Ok(Outcome::Failed(_) | Outcome::TimedOut(_)) => {
            hints.push(
                "`todo-deploy status` shows the pods; `todo-deploy history` the revisions"
                    .to_owned(),
            );
            Ok(failed_too)
        }
        Err(failure) => Ok(format!("{failed_too}: {}", failure.headline())),
    }
}

/// The pull Secret the failed run applied, which a rollback keeps (its login is in memory
/// only, and the revision rolled back to may pull from the same registry).
fn pull_secret_kept(deployer: &Deployer<'_>, deployed: &Deployed) -> Option<Object> {
    let name = render::registry::pull_secret_name(deployer.release);
    deployed
        .report
        .applied
        .iter()
        .find(|a| a.key.kind == Kind::Secret && a.key.name == name)
        .and_then(|a| a.after.as_ref())
        .and_then(revision::secret_object)
}

/// With `--no-build`, the images as they are in the engine, so that they can be loaded; an
/// image the engine lacks is deployed as it is (the node may have it) with a warning.
async fn existing_images(engine: &Docker, plan: &Plan, events: &Events) -> Vec<BuiltImage> {
    let mut found = Vec::new();
    for service in &plan.services {
        let reference = service.image.to_string();
        match engine.inspect_image(&reference).await {
            Ok(image) => found.push(BuiltImage {
                service: service.name.clone(),
                image: service.image.clone(),
                id: image.id.unwrap_or_default(),
                input_digest: service.input_digest.clone(),
                outcome: build::Outcome::Reused,
            }),
            Err(_) => events.send(Event::Warning(format!(
                "`{reference}` is not in the Docker engine, so it is not loaded; the node must have it"
            ))),
        }
    }
    found
}

fn images(plan: &Plan, built: &[BuiltImage], pins: &[Pin]) -> Vec<ImageRecord> {
    plan.services
        .iter()
        .map(|service| ImageRecord {
            service: service.name.clone(),
            reference: pins
                .iter()
                .find(|pin| pin.service == service.name)
                .map_or_else(|| service.image.to_string(), |pin| pin.image.clone()),
            id: built
                .iter()
                .find(|b| b.service == service.name)
                .map(|b| b.id.clone()),
        })
        .collect()
}

/// `--dry-run` and `diff`: the server's dry run of every object, and of pruning.
async fn dry(
    cluster: &Cluster,
    plan: &Plan,
    (namespace, objects): (&Object, &[Object]),
    args: &DeployArgs,
    mode: Mode,
    events: &Events,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let mut options = ApplyOptions {
        dry_run: true,
        force_conflicts: args.force_conflicts,
        namespace_missing: false,
    };
    let namespace = apply::namespace::ensure(cluster, namespace, options, events).await?;
    options.namespace_missing = namespace.change == Change::Created;
    let mut report = apply::apply(cluster, &plan.namespace, objects, options, events).await?;
    report.applied.insert(0, namespace);
    let keep: BTreeSet<ObjectKey> = objects.iter().map(|o| o.key.clone()).collect();
    report.pruned =
        apply::prune(cluster, &plan.namespace, &plan.release, &keep, true, events).await?;
    if mode == Mode::Diff {
        printer.data(&messages::diff_text(&report));
    } else {
        events.send(Event::Info(messages::summary(&report, true)));
    }
    Ok(Exit::Success)
}
