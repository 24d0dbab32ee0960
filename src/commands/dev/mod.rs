//! `todo-deploy dev`: the loop a developer lives in. It starts as `up` does (build, load, apply,
//! wait) under the dev profile (unless `--as-configured`), then watches the build contexts and
//! the configuration files; each burst of saves is an iteration that rebuilds only the services
//! whose input digest changed, loads only those images, applies everything (the server says what
//! changed) and waits only on the Deployments that changed. The pods' logs stream meanwhile.
//!
//! Nothing stops the loop but Ctrl-C: a build error, a configuration that no longer validates
//! or a failed rollout (never rolled back here) is shown, and the next save tries again. The
//! release lock is held (and renewed) for the whole run, so a second `dev` or an `up` is
//! refused. At the end one revision, `Dev`, records what runs; the release stays unless
//! `--cleanup`, which runs `down`.
//!
//! Ctrl-C is its own here: the first stops the loop (a build or wait in progress stops, an apply
//! finishes) and lets the run record and clean up; a second exits at once.

mod iteration;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bollard::Docker;
use tokio::sync::{mpsc, watch};

use crate::apply::{self, ApplyOptions, Object};
use crate::build::BuiltImage;
use crate::build::context::lexically_normal;
use crate::cli::{DevArgs, DownArgs, GlobalArgs};
use crate::cluster::{self, Cluster};
use crate::config::LoaderKind;
use crate::docker;
use crate::load::{self, Loader};
use crate::logs::{self, LogOptions, Redactor, Selection};
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::profile;
use crate::release::{self, ImageRecord, Record, lock};
use crate::render::registry::{Pin, PullLogin};
use crate::render::{self, Manifest, Rendered};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::{Events, Printer, Ui};
use crate::watch::{Batch, DEBOUNCE, DevEvent, FileWatch, Watched};

use super::revision::Deployer;

pub async fn run(
    global: &GlobalArgs,
    args: &DevArgs,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let stop = Stop::listen();
    let plan = resolve(global, args, env)?;
    Ui::around(printer, async |events| {
        let mut session = Session::start(global, args, env, plan, events, &stop).await?;
        session.run().await;
        session.end().await
    })
    .await?;
    if args.cleanup {
        let down = DownArgs {
            purge: false,
            delete_namespace: false,
            prune_images: false,
            timeout: args.timeout.clone(),
        };
        return super::down::run(global, &down, env, printer).await;
    }
    Ok(Exit::Success)
}

/// The plan as `up` would resolve it; the profile comes after.
fn resolve(
    global: &GlobalArgs,
    args: &DevArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Failure> {
    let flags = CommandFlags {
        tag: None,
        timeout: args.timeout.as_deref(),
        loader: args.loader,
        history_max: None,
    };
    Ok(settings::resolve(global, &flags, Purpose::Deploy, env)?)
}

/// Ctrl-C for `dev`: the first stops the loop, a second exits at once.
struct Stop {
    pressed: watch::Receiver<bool>,
}

impl Stop {
    fn listen() -> Stop {
        let (sender, pressed) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = sender.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(Exit::Interrupted.code());
                }
            }
        });
        Stop { pressed }
    }

    /// Completes once Ctrl-C was pressed.
    async fn stopped(&self) {
        let mut pressed = self.pressed.clone();
        let _ = pressed.wait_for(|pressed| *pressed).await;
    }

    fn is_stopped(&self) -> bool {
        *self.pressed.borrow()
    }
}

/// A task that stops when this is dropped.
struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the loop keeps between iterations.
struct Session<'a> {
    global: &'a GlobalArgs,
    args: &'a DevArgs,
    env: &'a dyn Fn(&str) -> Option<String>,
    events: &'a Events,
    stop: &'a Stop,
    /// The engine images are built in, and how they reach the nodes (none: they need not).
    engine: Docker,
    loader: Option<Loader>,
    cluster: Cluster,
    lock: Option<lock::Lock>,
    /// The plan of the last iteration that got as far as applying (the first one's at start).
    plan: Plan,
    /// The configuration files watched.
    files: Vec<PathBuf>,
    watched: Watched,
    watch: FileWatch,
    batches: mpsc::UnboundedReceiver<Batch>,
    /// The image each service runs (built and loaded), by service.
    built: BTreeMap<String, BuiltImage>,
    /// With a registry: the digest each service's image was pushed as (deployed by it, as `up`
    /// does), and the login the nodes pull with (its pull Secret).
    pins: BTreeMap<String, Pin>,
    pull: Option<PullLogin>,
    /// What the last apply applied.
    applied: Option<(Rendered, Vec<Object>)>,
    /// Whether each Deployment was ready when last waited for.
    ready: BTreeMap<String, bool>,
    /// Deployments whose wait a newer change cut short: the next turn waits for them too.
    unsettled: BTreeSet<String>,
    /// Whether any iteration changed the cluster: then the run is recorded.
    changed: bool,
    redactor: Redactor,
    _logs: Option<Background>,
    iteration: u32,
}

impl<'a> Session<'a> {
    /// Connects and checks as `up` does, takes the release lock, starts the file watch and the
    /// logs. Nothing is built yet.
    async fn start(
        global: &'a GlobalArgs,
        args: &'a DevArgs,
        env: &'a dyn Fn(&str) -> Option<String>,
        plan: Plan,
        events: &'a Events,
        stop: &'a Stop,
    ) -> Result<Session<'a>, Failure> {
        let plan = profiled(plan, args, events);
        let docker = docker::connect_saying(env, events).await?;
        let cluster = cluster::connect(&plan.cluster, events).await?;
        let access = crate::access::Command::Dev;
        super::preflight::check(&cluster, &plan.namespace, access, events).await?;
        lock::check(&cluster, &plan.namespace, &plan.release, events).await?;
        let loader = match loads(&plan) {
            true => {
                Some(load::resolve(&docker, &plan.cluster, &cluster.context, env, events).await?)
            }
            false => None,
        };
        let engine = match loader.as_ref().and_then(Loader::build_engine) {
            Some(endpoint) => endpoint.connect().await?,
            None => docker,
        };
        // Watching changes nothing: it starts before the lock, so that a failure leaves none.
        let files = config_files(global, &plan);
        let watched = Watched::new(&plan.services, &files);
        let (watch, batches) = FileWatch::start(&watched.roots(), DEBOUNCE)?;
        let lock = take_lock(&cluster, &plan, events).await?;
        events.send(DevEvent::Watching {
            services: plan.services.iter().map(|s| s.name.clone()).collect(),
            files: files.clone(),
        });
        let registry = loader.as_ref().and_then(Loader::registry);
        let pull = registry.and_then(|target| super::deploy::pull_login(target, events));
        let redactor = Redactor::new(secret_values(&plan));
        let logs = (!args.no_logs).then(|| follow_logs(&cluster, &plan, &redactor, events));
        Ok(Session {
            global,
            args,
            env,
            events,
            stop,
            engine,
            loader,
            cluster,
            lock: Some(lock),
            plan,
            files,
            watched,
            watch,
            batches,
            built: BTreeMap::new(),
            pins: BTreeMap::new(),
            pull,
            applied: None,
            ready: BTreeMap::new(),
            unsettled: BTreeSet::new(),
            changed: false,
            redactor,
            _logs: logs,
            iteration: 0,
        })
    }

    /// Records the run's revision (when it changed anything) and lets go of the lock.
    async fn end(mut self) -> Result<(), Failure> {
        self._logs = None;
        self.events.send(DevEvent::Stopping {
            cleanup: self.args.cleanup,
        });
        let recorded = self.record().await;
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
        recorded
    }

    /// One revision, `Dev`: what the last apply applied; deployed when every Deployment was
    /// ready when last waited for, interrupted when Ctrl-C cut a wait short, failed otherwise.
    async fn record(&self) -> Result<(), Failure> {
        let Some((rendered, objects)) = self.applied.as_ref().filter(|_| self.changed) else {
            return Ok(());
        };
        let plan = &self.plan;
        let history =
            release::history(&self.cluster, &plan.namespace, &plan.release, self.events).await?;
        let record = Record {
            release: plan.release.clone(),
            revision: 0,
            status: release::RevisionStatus::Pending,
            time: String::new(),
            tool_version: String::new(),
            description: "Dev".to_owned(),
            images: self.images(),
            config_digest: plan.config_digest.clone(),
            manifests: release::redact_manifests(&rendered.all()),
        }
        .next_after(&history);
        // A rollout Ctrl-C cut short is not known to have finished.
        let status = match (self.unsettled.is_empty(), self.ready.values().all(|r| *r)) {
            (false, _) => release::RevisionStatus::Interrupted,
            (true, true) => release::RevisionStatus::Deployed,
            (true, false) => release::RevisionStatus::Failed,
        };
        let deployer = Deployer::new(&self.cluster, plan, self.args.force_conflicts, self.events);
        let record = deployer.record_done(record, status, objects).await?;
        self.events.send(DevEvent::Recorded {
            revision: record.revision,
            status: record.status.as_str().to_owned(),
        });
        Ok(())
    }

    fn images(&self) -> Vec<ImageRecord> {
        self.plan
            .services
            .iter()
            .map(|service| ImageRecord {
                service: service.name.clone(),
                reference: self
                    .pins
                    .get(&service.name)
                    .map_or_else(|| service.image.to_string(), |pin| pin.image.clone()),
                id: self.built.get(&service.name).map(|b| b.id.clone()),
            })
            .collect()
    }
}

/// The plan with the dev profile, unless `--as-configured`; says which.
fn profiled(plan: Plan, args: &DevArgs, events: &Events) -> Plan {
    if args.as_configured {
        events.send(DevEvent::AsConfigured);
        return plan;
    }
    let (plan, changes) = profile::dev(plan);
    events.send(DevEvent::Profile(changes));
    plan
}

/// The plan with the profile `profiled` applied at start, said once there.
fn profiled_quietly(plan: Plan, args: &DevArgs) -> Plan {
    match args.as_configured {
        true => plan,
        false => profile::dev(plan).0,
    }
}

/// Whether images are loaded onto the nodes.
fn loads(plan: &Plan) -> bool {
    !matches!(plan.cluster.loader, LoaderKind::None | LoaderKind::Docker)
}

/// The namespace (the lock lives in it), then the lock; a revision a killed run left pending is
/// marked abandoned, as `up` does.
async fn take_lock(cluster: &Cluster, plan: &Plan, events: &Events) -> Result<lock::Lock, Failure> {
    let namespace = Object::from_manifest(&Manifest::Namespace(render::render(plan).namespace));
    let options = ApplyOptions::default();
    apply::apply(cluster, &plan.namespace, &[namespace], options, events).await?;
    let lock = lock::acquire(cluster, &plan.namespace, &plan.release, events).await?;
    let history = release::history(cluster, &plan.namespace, &plan.release, events).await;
    let abandoned = match history {
        Ok(history) => release::abandon_pending(cluster, &plan.namespace, history, events)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = abandoned {
        lock.release().await;
        return Err(error.into());
    }
    Ok(lock)
}

/// The configuration files a change of which re-renders: `--config`, every `-f`, the env file.
fn config_files(global: &GlobalArgs, plan: &Plan) -> Vec<PathBuf> {
    let absolute = |path: &PathBuf| match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.clone(),
    };
    let mut files: Vec<PathBuf> = std::iter::once(&global.config)
        .chain(&global.values)
        .chain(&plan.secret.env_file)
        .map(absolute)
        .map(|path| lexically_normal(&path))
        .collect();
    let mut seen = BTreeSet::new();
    files.retain(|f| seen.insert(f.clone()));
    files
}

/// The plan's secret values, to hide in log lines.
fn secret_values(plan: &Plan) -> Vec<String> {
    plan.secret
        .values
        .values()
        .map(|v| v.expose().to_owned())
        .collect()
}

/// Streams the release's logs in the background: only new lines of the pods already running,
/// every line of the pods that start from now on.
fn follow_logs(cluster: &Cluster, plan: &Plan, redactor: &Redactor, events: &Events) -> Background {
    let (cluster, redactor, events) = (cluster.clone(), redactor.clone(), events.clone());
    let selection = Selection {
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        services: Vec::new(),
    };
    let options = LogOptions {
        from_now: true,
        ..LogOptions::default()
    };
    Background(tokio::spawn(async move {
        logs::follow(&cluster, &selection, &options, &redactor, &events).await;
    }))
}
