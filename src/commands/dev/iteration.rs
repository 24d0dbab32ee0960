//! One turn of the dev loop: what a burst of saves means (the watch's triggers, then the input
//! digests), and the steps it takes: resolve the plan again, build and load only the services
//! whose digest changed, apply everything, wait only on the Deployments the apply changed. Each
//! step that fails says why and ends the turn; the loop then waits for the next save.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Session, profiled_quietly, resolve, secret_values};
use crate::apply::{self, ApplyOptions, Change, Object};
use crate::build::{self, BuildOptions};
use crate::load;
use crate::outcome::Failure;
use crate::plan::{Plan, ServicePlan};
use crate::progress::Events;
use crate::render::registry::Pin;
use crate::render::{self, Kind};
use crate::rollout::{self, Outcome, RolloutState, Standing};
use crate::watch::{Batch, DevEvent, Report, ServiceState, Triggers, Watched};

use super::super::messages;

/// How a turn ended.
enum Step {
    /// It ran to its end (`true`: every step succeeded).
    Done(bool),
    /// Ctrl-C.
    Stopped,
    /// A change came during the rollout's wait: these are its triggers.
    Superseded(Triggers),
}

impl Session<'_> {
    /// Runs the loop until Ctrl-C: the first turn deploys everything, each later one what a
    /// burst of saves changed.
    pub(super) async fn run(&mut self) {
        let everything = Triggers {
            services: self.plan.services.iter().map(|s| s.name.clone()).collect(),
            config: true,
            ..Triggers::default()
        };
        let mut next = self.turn(everything, true).await;
        while !self.stop.is_stopped() {
            let triggers = match next.take() {
                Some(triggers) => triggers,
                None => tokio::select! {
                    batch = self.batches.recv() => match batch {
                        Some(batch) => self.judge(batch),
                        None => return,
                    },
                    () = self.stop.stopped() => return,
                },
            };
            if !triggers.is_empty() {
                next = self.turn(triggers, false).await;
            }
        }
    }

    /// What a batch of changed paths triggers; a context made anew is watched again.
    fn judge(&mut self, batch: Batch) -> Triggers {
        let triggers = judge(batch, &self.watched, self.events);
        for (root, mode) in self.watched.roots() {
            if triggers.relevant.contains(&root) && root.is_dir() {
                // It is watched already when it never went away.
                let _ = self.watch.add(&root, mode);
            }
        }
        triggers
    }

    /// One turn; returns the triggers of a change that came during its wait.
    async fn turn(&mut self, triggers: Triggers, first: bool) -> Option<Triggers> {
        self.iteration += 1;
        let started = Instant::now();
        if !first {
            self.events.send(DevEvent::Changed {
                paths: triggers.relevant.clone(),
                services: triggers.services.iter().cloned().collect(),
                config: triggers.config,
            });
        }
        let ok = match self.steps(&triggers, first, started).await {
            Step::Done(ok) => ok,
            Step::Stopped => return None,
            Step::Superseded(next) => {
                self.events.send(DevEvent::Superseded);
                return Some(next);
            }
        };
        self.events.send(DevEvent::Done {
            iteration: self.iteration,
            elapsed: started.elapsed(),
            ok,
        });
        None
    }

    async fn steps(&mut self, triggers: &Triggers, first: bool, started: Instant) -> Step {
        let plan = match resolve(self.global, self.args, self.env) {
            Ok(plan) => profiled_quietly(plan, self.args),
            Err(failure) => return self.problem(&failure, false),
        };
        self.watched = Watched::new(&plan.services, &self.files);
        self.redactor.add(secret_values(&plan));
        let rebuild: Vec<ServicePlan> = plan
            .services
            .iter()
            .filter(|s| {
                let built = self.built.get(&s.name);
                built.is_none_or(|b| b.input_digest != s.input_digest)
            })
            .cloned()
            .collect();
        if !first && rebuild.is_empty() && !triggers.config {
            self.events.send(DevEvent::NothingChanged);
            return Step::Done(true);
        }
        if let Err(step) = self.ship(&rebuild, started).await {
            return step;
        }
        self.apply_and_wait(plan, &rebuild, first, started).await
    }

    /// Builds the services in `rebuild` and loads their images; the rest are left alone.
    async fn ship(&mut self, rebuild: &[ServicePlan], started: Instant) -> Result<(), Step> {
        if rebuild.is_empty() {
            return Ok(());
        }
        self.states(
            rebuild.iter().map(|s| s.name.clone()),
            ServiceState::Building,
            None,
        );
        let options = BuildOptions::default();
        let built = tokio::select! {
            built = build::build_all(&self.engine, rebuild, &options, self.events) => built,
            () = self.stop.stopped() => return Err(Step::Stopped),
        };
        let built = match built {
            Ok(built) => built,
            Err(error) => return Err(self.failed(rebuild, &error.into(), started)),
        };
        if let Some(loader) = &self.loader {
            self.states(
                rebuild.iter().map(|s| s.name.clone()),
                ServiceState::Loading,
                None,
            );
            let loaded = tokio::select! {
                loaded = load::load_all(&self.engine, loader, &built, self.events) => loaded,
                () = self.stop.stopped() => return Err(Step::Stopped),
            };
            let loaded = match loaded {
                Ok(loaded) => loaded,
                Err(error) => return Err(self.failed(rebuild, &error.into(), started)),
            };
            if let Some(target) = loader.registry() {
                for pin in super::super::deploy::pins(&built, &loaded, target) {
                    self.pins.insert(pin.service.clone(), pin);
                }
            }
        }
        for image in built {
            self.built.insert(image.service.clone(), image);
        }
        Ok(())
    }

    /// The services of `rebuild` failed with `failure`.
    fn failed(&self, rebuild: &[ServicePlan], failure: &Failure, started: Instant) -> Step {
        let names = rebuild.iter().map(|s| s.name.clone());
        self.states(names, ServiceState::Failed, Some(started.elapsed()));
        self.problem(failure, false)
    }

    /// Applies the plan's objects and waits for the Deployments the apply changed (all of them
    /// the first time, and those a newer change cut short before).
    async fn apply_and_wait(
        &mut self,
        plan: Plan,
        rebuild: &[ServicePlan],
        first: bool,
        started: Instant,
    ) -> Step {
        let rendered = render::render(&plan);
        // Pushed images are deployed by the digest the registry reported, as `up` does.
        let rendered = match self.pins.is_empty() {
            true => rendered,
            false => {
                let pins: Vec<Pin> = self.pins.values().cloned().collect();
                render::registry::pinned(&plan, rendered, &pins, self.pull.as_ref())
            }
        };
        let objects: Vec<Object> = rendered.objects.iter().map(Object::from_manifest).collect();
        let options = ApplyOptions {
            force_conflicts: self.args.force_conflicts,
            ..ApplyOptions::default()
        };
        let applied = apply::apply(
            &self.cluster,
            &plan.namespace,
            &objects,
            options,
            self.events,
        );
        let report = match applied.await {
            Ok(report) => report,
            Err(error) => return self.problem(&error.into(), true),
        };
        self.changed |= report.changed();
        let mut targets: BTreeSet<String> = report
            .applied
            .iter()
            .filter(|a| a.key.kind == Kind::Deployment && (first || a.change != Change::Unchanged))
            .map(|a| a.key.name.clone())
            .collect();
        targets.append(&mut self.unsettled);
        let untouched = rebuild.iter().filter(|s| !targets.contains(&s.name));
        self.states(untouched.map(|s| s.name.clone()), ServiceState::Ready, None);
        self.plan = plan;
        self.applied = Some((rendered, objects));
        if targets.is_empty() {
            if !report.changed() {
                self.events.send(DevEvent::NothingChanged);
            }
            return Step::Done(true);
        }
        self.roll_out(targets.into_iter().collect(), started).await
    }

    /// Waits for `deployments` to roll out, until Ctrl-C or a newer change.
    async fn roll_out(&mut self, deployments: Vec<String>, started: Instant) -> Step {
        self.states(deployments.iter().cloned(), ServiceState::RollingOut, None);
        let target = rollout::Target {
            namespace: self.plan.namespace.clone(),
            release: self.plan.release.clone(),
            deployments: deployments.clone(),
            timeout: self.plan.timeout,
        };
        let mut next = None;
        let (batches, watched, events, stop) =
            (&mut self.batches, &self.watched, self.events, self.stop);
        let cancel = async {
            tokio::select! {
                () = stop.stopped() => {}
                triggers = next_change(batches, watched, events) => next = Some(triggers),
            }
        };
        let outcome = rollout::wait(&self.cluster, &target, cancel, self.events).await;
        let took = Some(started.elapsed());
        match outcome {
            Outcome::Ready => {
                for deployment in &deployments {
                    self.ready.insert(deployment.clone(), true);
                }
                self.states(deployments.into_iter(), ServiceState::Ready, took);
                Step::Done(true)
            }
            Outcome::Interrupted(_) => {
                // Waited for by the next turn, or, after Ctrl-C, not known to be done.
                self.unsettled.extend(deployments);
                match next {
                    Some(triggers) => Step::Superseded(triggers),
                    None => Step::Stopped,
                }
            }
            Outcome::Failed(standings) => self.rollout_failed("failed", standings, took),
            Outcome::TimedOut(standings) => {
                let what = format!("did not finish within {}s", self.plan.timeout.as_secs());
                self.rollout_failed(&what, standings, took)
            }
            Outcome::Unreachable { since, standings } => {
                self.settle(&standings, took);
                let server = &self.cluster.server;
                let failure = messages::unreachable_failure(server, since, &standings, None);
                self.problem(&failure, true)
            }
        }
    }

    /// A rollout that failed: its diagnosis, and each Deployment's state. Nothing rolls back.
    fn rollout_failed(
        &mut self,
        what: &str,
        mut standings: Vec<Standing>,
        took: Option<Duration>,
    ) -> Step {
        let secrets = secret_values(&self.plan);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        rollout::redact_logs(&mut standings, &secrets);
        self.settle(&standings, took);
        let (message, hints) = messages::rollout_report(what, &standings);
        let failure = Failure::message(crate::outcome::Exit::Failed, message, hints);
        self.problem(&failure, true)
    }

    /// Notes where each waited-for Deployment ended up.
    fn settle(&mut self, standings: &[Standing], took: Option<Duration>) {
        for standing in standings {
            let ready = standing.state == RolloutState::Complete;
            self.ready.insert(standing.deployment.clone(), ready);
            let state = match ready {
                true => ServiceState::Ready,
                false => ServiceState::Failed,
            };
            self.states(std::iter::once(standing.deployment.clone()), state, took);
        }
    }

    fn states(
        &self,
        services: impl Iterator<Item = String>,
        state: ServiceState,
        took: Option<Duration>,
    ) {
        let at = jiff::Timestamp::now();
        for service in services {
            self.events.send(DevEvent::State {
                service,
                state,
                at,
                took,
            });
        }
    }

    /// Shows `failure`; the turn ends there.
    fn problem(&self, failure: &Failure, applied: bool) -> Step {
        let report = Report {
            headline: failure.headline(),
            causes: failure.causes(),
            hints: failure.hints().to_vec(),
        };
        self.events.send(DevEvent::Problem { report, applied });
        Step::Done(false)
    }
}

/// What a batch triggers; a batch of ignored paths only is said as such.
fn judge(batch: Batch, watched: &Watched, events: &Events) -> Triggers {
    match batch {
        Err(message) => {
            events.send(DevEvent::WatchError { message });
            Triggers::default()
        }
        Ok(paths) => {
            let triggers = watched.classify(&paths);
            if triggers.is_empty() && !triggers.ignored.is_empty() {
                events.send(DevEvent::Ignored {
                    paths: triggers.ignored.clone(),
                });
            }
            triggers
        }
    }
}

/// The next batch that triggers something (never, once the watch has ended).
async fn next_change(
    batches: &mut mpsc::UnboundedReceiver<Batch>,
    watched: &Watched,
    events: &Events,
) -> Triggers {
    loop {
        let Some(batch) = batches.recv().await else {
            return std::future::pending().await;
        };
        let triggers = judge(batch, watched, events);
        if !triggers.is_empty() {
            return triggers;
        }
    }
}
