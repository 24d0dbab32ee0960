//! When is a rollout done? Pure functions of a Deployment, as `kubectl rollout status` decides:
//! the controller must have observed the current `generation` first, or an upgrade "finishes"
//! on the counts of the previous rollout.

use k8s_openapi::api::apps::v1::Deployment;

/// Replica counts of a Deployment, for progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// Pods of older ReplicaSets still counted in `status.replicas`.
    pub old: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// The Deployment does not exist (yet, or any more).
    Missing,
    /// The controller has not observed the latest spec yet.
    NotObserved,
    /// Working on it; the text says what it waits for.
    Progressing {
        waiting_for: String,
    },
    /// The controller gave up: `Progressing` is `False` with `ProgressDeadlineExceeded`.
    DeadlineExceeded {
        message: String,
    },
    Complete,
}

pub fn counts(deployment: &Deployment) -> Counts {
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    Counts {
        desired,
        updated,
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        old: (status.replicas.unwrap_or(0) - updated).max(0),
    }
}

/// The rollout state of `deployment`.
pub fn rollout_state(deployment: Option<&Deployment>) -> RolloutState {
    let Some(deployment) = deployment else {
        return RolloutState::Missing;
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return RolloutState::NotObserved;
    }
    if let Some(progressing) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing")
        && progressing.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return RolloutState::DeadlineExceeded {
            message: progressing.message.clone().unwrap_or_default(),
        };
    }
    let counts = counts(deployment);
    let replicas = status.replicas.unwrap_or(0);
    if counts.updated < counts.desired {
        return RolloutState::Progressing {
            waiting_for: format!(
                "{} of {} new replicas updated",
                counts.updated, counts.desired
            ),
        };
    }
    if replicas > counts.updated {
        let old = replicas - counts.updated;
        return RolloutState::Progressing {
            waiting_for: format!(
                "{old} old {} pending termination",
                if old == 1 { "replica" } else { "replicas" }
            ),
        };
    }
    if counts.available < counts.updated {
        return RolloutState::Progressing {
            waiting_for: format!(
                "{} of {} updated replicas available",
                counts.available, counts.updated
            ),
        };
    }
    RolloutState::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(yaml: &str) -> Deployment {
        serde_saphyr::from_str(yaml).expect("a Deployment")
    }

    #[test]
    fn a_new_generation_is_not_done_on_the_old_counts() {
        // The first watch event after an image change (04-rolling-update-watch.json): the old
        // rollout's counts are all complete, but the controller has not seen generation 2 yet.
        let d = deployment(
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}",
        );
        assert_eq!(rollout_state(Some(&d)), RolloutState::NotObserved);
    }

    #[test]
    fn surge_then_old_replicas_then_done() {
        let surging = deployment(
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 3, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2, unavailableReplicas: 1}",
        );
        assert_eq!(
            rollout_state(Some(&surging)),
            RolloutState::Progressing {
                waiting_for: "1 of 2 new replicas updated".into()
            }
        );
        let old_left = deployment(
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 3, updatedReplicas: 2, readyReplicas: 3, availableReplicas: 3}",
        );
        assert_eq!(
            rollout_state(Some(&old_left)),
            RolloutState::Progressing {
                waiting_for: "1 old replica pending termination".into()
            }
        );
        let unavailable = deployment(
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1}",
        );
        assert_eq!(
            rollout_state(Some(&unavailable)),
            RolloutState::Progressing {
                waiting_for: "1 of 2 updated replicas available".into()
            }
        );
        let done = deployment(
            "metadata: {name: web, generation: 2}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}",
        );
        assert_eq!(rollout_state(Some(&done)), RolloutState::Complete);
        assert_eq!(
            counts(&done),
            Counts {
                desired: 2,
                updated: 2,
                ready: 2,
                available: 2,
                old: 0
            }
        );
    }

    #[test]
    fn absent_counts_are_zero() {
        // The real controller omits zero counts; `updatedReplicas` is absent in one event of 04.
        let d = deployment(
            "metadata: {name: web, generation: 1}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 1, replicas: 2, unavailableReplicas: 2}",
        );
        assert_eq!(
            rollout_state(Some(&d)),
            RolloutState::Progressing {
                waiting_for: "0 of 2 new replicas updated".into()
            }
        );
    }

    #[test]
    fn deadline_exceeded_is_reported_with_its_message() {
        let d = deployment(
            r#"metadata: {name: deadline, generation: 1}
spec: {replicas: 1, selector: {}, template: {}}
status:
  observedGeneration: 1
  replicas: 1
  updatedReplicas: 1
  unavailableReplicas: 1
  conditions:
  - {type: Available, status: "False", reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: ReplicaSet "deadline-5445b55c67" has timed out progressing.}"#,
        );
        assert_eq!(
            rollout_state(Some(&d)),
            RolloutState::DeadlineExceeded {
                message: "ReplicaSet \"deadline-5445b55c67\" has timed out progressing.".into()
            }
        );
    }

    #[test]
    fn zero_replicas_and_missing() {
        let d = deployment(
            "metadata: {name: web, generation: 3}
spec: {replicas: 0, selector: {}, template: {}}
status: {observedGeneration: 3}",
        );
        assert_eq!(rollout_state(Some(&d)), RolloutState::Complete);
        assert_eq!(rollout_state(None), RolloutState::Missing);
    }
}
