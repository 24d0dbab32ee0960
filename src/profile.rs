//! The dev profile: what `dev` changes in a plan so that a save reaches a ready pod sooner, and
//! nothing else. One replica per service (a rollout of one pod, not one after the other), and
//! for a service whose probes wait out initial delays, a startup probe in their place: it asks
//! the readiness path every second from the start, and holds the other probes back until it
//! passes, so their initial delays can go. Paths, periods and thresholds stay as configured.
//! A pure function of the plan; `--as-configured` skips it.

use crate::config::ProbeConfig;
use crate::plan::Plan;

/// What the profile changed in one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    pub service: String,
    /// `(configured, now)` when the replica count changed.
    pub replicas: Option<(u32, u32)>,
    /// The initial delays `(readiness, liveness)` a startup probe replaced, in seconds.
    pub startup: Option<(i32, i32)>,
    /// The startup probe's path.
    pub startup_path: String,
}

/// Initial delays up to this are left alone: a startup probe would not save anything.
const SHORT_DELAY: i32 = 2;
/// How long a startup probe waits for the app at the least, in seconds.
const PATIENCE: i32 = 60;

/// The plan with the dev profile, and what changed (services it did not change are left out).
pub fn dev(mut plan: Plan) -> (Plan, Vec<ProfileChange>) {
    let mut changes = Vec::new();
    for service in &mut plan.services {
        let replicas = (service.replicas != 1).then(|| {
            let configured = service.replicas;
            service.replicas = 1;
            (configured, 1)
        });
        let probes = &mut service.probes;
        let delays = (
            probes.readiness.initial_delay_seconds,
            probes.liveness.initial_delay_seconds,
        );
        let startup =
            (service.startup.is_none() && delays.0.max(delays.1) > SHORT_DELAY).then(|| {
                // As patient as the configuration was, several times over: a slow start is
                // not a failure.
                let patience = PATIENCE.max(3 * delays.0.max(delays.1));
                service.startup = Some(ProbeConfig {
                    path: probes.readiness.path.clone(),
                    initial_delay_seconds: 0,
                    period_seconds: 1,
                    failure_threshold: patience,
                    timeout_seconds: probes.readiness.timeout_seconds,
                });
                probes.readiness.initial_delay_seconds = 0;
                probes.liveness.initial_delay_seconds = 0;
                delays
            });
        if replicas.is_some() || startup.is_some() {
            changes.push(ProfileChange {
                service: service.name.clone(),
                replicas,
                startup,
                startup_path: probes.readiness.path.clone(),
            });
        }
    }
    (plan, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(readiness_delay: i32, liveness_delay: i32, replicas: u32) -> Plan {
        let config =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/todo-deploy.yaml");
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "todo-deploy".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
            "--set".to_owned(),
            format!("services.backend.probes.readiness.initialDelaySeconds={readiness_delay}"),
            "--set".to_owned(),
            format!("services.backend.probes.liveness.initialDelaySeconds={liveness_delay}"),
            "--set".to_owned(),
            format!("services.backend.replicas={replicas}"),
            "render".to_owned(),
        ])
        .expect("flags");
        let flags = crate::settings::CommandFlags::default();
        crate::settings::resolve(
            &cli.global,
            &flags,
            crate::settings::Purpose::Inspect,
            &|_| None,
        )
        .expect("the default config resolves")
    }

    #[test]
    fn one_replica_and_a_startup_probe_instead_of_long_initial_delays() {
        let (profiled, changes) = dev(plan(10, 15, 2));
        let backend = profiled.service("backend").expect("a backend");
        assert_eq!(backend.replicas, 1);
        let startup = backend.startup.as_ref().expect("a startup probe");
        assert_eq!(startup.path, backend.probes.readiness.path);
        assert_eq!(
            (startup.initial_delay_seconds, startup.period_seconds),
            (0, 1)
        );
        assert!(startup.failure_threshold >= 45, "as patient as 3 x 15 s");
        assert_eq!(backend.probes.readiness.initial_delay_seconds, 0);
        assert_eq!(backend.probes.liveness.initial_delay_seconds, 0);
        let original = plan(10, 15, 2);
        let configured = original.service("backend").expect("a backend");
        assert_eq!(
            backend.probes.readiness.period_seconds, configured.probes.readiness.period_seconds,
            "periods stay"
        );
        let change = changes
            .iter()
            .find(|c| c.service == "backend")
            .expect("a change");
        assert_eq!(change.replicas, Some((2, 1)));
        assert_eq!(change.startup, Some((10, 15)));
    }

    #[test]
    fn short_delays_and_single_replicas_are_left_as_they_are() {
        let (profiled, changes) = dev(plan(1, 2, 1));
        let backend = profiled.service("backend").expect("a backend");
        assert!(backend.startup.is_none());
        assert_eq!(backend.probes.readiness.initial_delay_seconds, 1);
        assert!(
            !changes.iter().any(|c| c.service == "backend"),
            "{changes:?}"
        );
    }
}
