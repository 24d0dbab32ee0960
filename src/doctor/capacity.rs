//! Whether the release fits on the nodes during a rolling update: every Deployment's `replicas`
//! plus room for one new pod at a time (the biggest of the Deployments that surge: the rollouts
//! take turns, each ready new pod freeing an old one), each asking its containers' requests, on
//! nodes whose
//! allocatable CPU and memory are partly requested by pods already there (the release's own
//! pods excluded: the update replaces them). Pure: the caller lists the nodes and pods.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Check, Finding};
use crate::units::parse_quantity;

/// CPU (cores) and memory (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Amount {
    pub cpu: f64,
    pub memory: f64,
}

impl Amount {
    fn fits_in(self, free: Amount) -> bool {
        // A thousandth of a core and a byte of slack for float sums.
        self.cpu <= free.cpu + 1e-6 && self.memory <= free.memory + 0.5
    }

    fn minus(self, other: Amount) -> Amount {
        Amount {
            cpu: self.cpu - other.cpu,
            memory: self.memory - other.memory,
        }
    }

    fn plus(self, other: Amount) -> Amount {
        Amount {
            cpu: self.cpu + other.cpu,
            memory: self.memory + other.memory,
        }
    }

    /// `1500m CPU, 768Mi memory`.
    pub fn describe(self) -> String {
        format!(
            "{} CPU, {} memory",
            millicores(self.cpu),
            mebibytes(self.memory)
        )
    }
}

fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round().max(0.0) as i64)
}

fn mebibytes(bytes: f64) -> String {
    format!("{}Mi", (bytes / (1024.0 * 1024.0)).floor().max(0.0) as i64)
}

fn quantity(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    key: &str,
) -> f64 {
    map.and_then(|map| map.get(key))
        .and_then(|q| parse_quantity(&q.0).ok())
        .unwrap_or(0.0)
}

fn requested(resources: Option<&ResourceRequirements>) -> Amount {
    let requests = resources.and_then(|r| r.requests.as_ref());
    Amount {
        cpu: quantity(requests, "cpu"),
        memory: quantity(requests, "memory"),
    }
}

/// What a pod asks the scheduler for: its containers' requests added up, or its largest init
/// container's when that is more.
fn pod_request(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Amount {
    let Some(spec) = spec else {
        return Amount::default();
    };
    let containers = spec
        .containers
        .iter()
        .map(|c| requested(c.resources.as_ref()))
        .fold(Amount::default(), Amount::plus);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| requested(c.resources.as_ref()));
    init.fold(containers, |most, one| Amount {
        cpu: most.cpu.max(one.cpu),
        memory: most.memory.max(one.memory),
    })
}

/// A node that takes new pods, and what is left on it.
#[derive(Debug, Clone)]
struct Room {
    name: String,
    allocatable: Amount,
    free: Amount,
}

fn schedulable(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !unschedulable
}

fn rooms(nodes: &[Node], pods: &[Pod], is_ours: &dyn Fn(&Pod) -> bool) -> Vec<Room> {
    nodes
        .iter()
        .filter(|node| schedulable(node))
        .map(|node| {
            let name = node.metadata.name.clone().unwrap_or_default();
            let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
            let allocatable = Amount {
                cpu: quantity(allocatable, "cpu"),
                memory: quantity(allocatable, "memory"),
            };
            let used = pods
                .iter()
                .filter(|pod| !is_ours(pod))
                .filter(|pod| pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name))
                .filter(|pod| {
                    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                    !matches!(phase, Some("Succeeded" | "Failed"))
                })
                .map(|pod| pod_request(pod.spec.as_ref()))
                .fold(Amount::default(), Amount::plus);
            Room {
                name,
                allocatable,
                free: allocatable.minus(used),
            }
        })
        .collect()
}

/// A Deployment's pods during a rolling update: `replicas + maxSurge` (a percentage of replicas
/// rounds up, as the controller rounds it).
fn rolling_pods(deployment: &Deployment) -> u32 {
    let spec = deployment.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
    let surge = spec
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_surge.as_ref());
    let surge = match surge {
        Some(IntOrString::Int(n)) => (*n).max(0) as u32,
        Some(IntOrString::String(text)) => text
            .trim_end_matches('%')
            .parse::<u32>()
            .map(|percent| (replicas * percent).div_ceil(100))
            .unwrap_or(0),
        None => replicas.div_ceil(4),
    };
    replicas + surge
}

/// A Deployment's running pods: its `replicas`.
fn replicas(deployment: &Deployment) -> u32 {
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
    replicas.unwrap_or(1).max(0) as u32
}

/// One Deployment's need.
struct Need {
    service: String,
    pods: u32,
    each: Amount,
    /// Its rolling update starts pods beyond `replicas` (maxSurge above 0).
    surges: bool,
    /// `pods` counts one new pod of the update beyond `replicas`.
    with_new: bool,
}

/// Whether the release's Deployments fit on the nodes during a rolling update; `is_ours` tells
/// the release's own pods (replaced by the update). `minikube` says the cluster is Minikube's
/// (the fix then names `minikube start`).
pub fn check(
    deployments: &[Deployment],
    nodes: &[Node],
    pods: &[Pod],
    is_ours: &dyn Fn(&Pod) -> bool,
    minikube: bool,
) -> Finding {
    let mut rooms = rooms(nodes, pods, is_ours);
    if rooms.is_empty() {
        return Finding::error(
            Check::Capacity,
            "no node is ready to take pods",
            Some("`kubectl get nodes` shows why; on Minikube `minikube start`".to_owned()),
        );
    }
    let mut needs: Vec<Need> = deployments
        .iter()
        .map(|d| Need {
            service: d.metadata.name.clone().unwrap_or_default(),
            pods: replicas(d),
            each: pod_request(d.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
            surges: rolling_pods(d) > replicas(d),
            with_new: false,
        })
        .collect();
    // The biggest pods first, as a scheduler packing well would.
    needs.sort_by(|a, b| b.each.cpu.total_cmp(&a.each.cpu));
    // Beyond the running pods, an update needs room for one new pod at a time: each new pod that
    // becomes ready lets its Deployment remove an old one, so the rollouts take turns. Room for
    // the biggest is what every rollout needs to progress.
    if let Some(biggest) = needs.iter_mut().find(|need| need.surges) {
        biggest.pods += 1;
        biggest.with_new = true;
    }
    let total = needs.iter().fold(Amount::default(), |sum, need| {
        sum.plus(Amount {
            cpu: need.each.cpu * f64::from(need.pods),
            memory: need.each.memory * f64::from(need.pods),
        })
    });
    let initial = rooms
        .iter()
        .fold(Amount::default(), |sum, r| sum.plus(r.free));
    for need in &needs {
        for placed in 0..need.pods {
            let Some(room) = rooms.iter_mut().find(|room| need.each.fits_in(room.free)) else {
                let short = Shortage {
                    need,
                    placed,
                    initial,
                    total,
                };
                return too_small(&short, &needs, &rooms, minikube);
            };
            room.free = room.free.minus(need.each);
        }
    }
    let free = rooms
        .iter()
        .fold(Amount::default(), |sum, r| sum.plus(r.free));
    Finding::ok(
        Check::Capacity,
        format!(
            "a rolling update needs {} ({}); {} stay free on {}",
            total.describe(),
            needs
                .iter()
                .map(|n| format!("{} {}×{}", n.service, n.pods, millicores(n.each.cpu)))
                .collect::<Vec<_>>()
                .join(", "),
            free.describe(),
            node_names(&rooms)
        ),
    )
}

fn node_names(rooms: &[Room]) -> String {
    let names: Vec<String> = rooms.iter().map(|r| format!("`{}`", r.name)).collect();
    match names.len() {
        1 => format!("node {}", names[0]),
        _ => format!("nodes {}", names.join(", ")),
    }
}

/// Where the placement stopped.
struct Shortage<'a> {
    need: &'a Need,
    placed: u32,
    /// Free on all nodes before the release's pods.
    initial: Amount,
    total: Amount,
}

fn too_small(short: &Shortage<'_>, needs: &[Need], rooms: &[Room], minikube: bool) -> Finding {
    let Shortage {
        need,
        placed,
        initial,
        total,
    } = *short;
    let best = rooms
        .iter()
        .max_by(|a, b| a.free.cpu.total_cmp(&b.free.cpu))
        .map(|r| r.free)
        .unwrap_or_default();
    let message = format!(
        "service `{}` does not fit during a rolling update: {} pods ({}) of {} each, but {} of them find no room once the others are placed; the nodes have {} free of {} allocatable ({}), the release needs {}",
        need.service,
        need.pods,
        match need.with_new {
            true => "replicas + one new pod of the update",
            false => "replicas",
        },
        need.each.describe(),
        need.pods - placed,
        initial.describe(),
        rooms
            .iter()
            .fold(Amount::default(), |s, r| s.plus(r.allocatable))
            .describe(),
        node_names(rooms),
        total.describe()
    );
    let _ = best;
    let bigger = match minikube {
        true => {
            "a bigger node: `minikube delete && minikube start --cpus 4 --memory 8g`".to_owned()
        }
        false => "more CPU and memory on the nodes".to_owned(),
    };
    let fix = match smaller_requests(needs, initial, total) {
        Some(sets) => format!("lower the requests so that everything fits: {sets}; or {bigger}"),
        None => format!("{bigger}, or stop other workloads"),
    };
    Finding::error(Check::Capacity, message, Some(fix))
}

/// `--set` flags that scale every service's request down by what is free over what is
/// needed (CPU, or memory when CPU is not short); a request that would fall under 1m or 1Mi
/// is left out, and `None` when nothing is free at all.
fn smaller_requests(needs: &[Need], initial: Amount, total: Amount) -> Option<String> {
    let cpu_short = total.cpu > initial.cpu + 1e-6;
    let (field, ratio) = match cpu_short {
        true => ("cpu", initial.cpu.max(0.0) / total.cpu),
        false => ("memory", initial.memory.max(0.0) / total.memory.max(1.0)),
    };
    // A little under the exact share, for the rounding of each request.
    let ratio = ratio * 0.95;
    let sets: Vec<String> = needs
        .iter()
        .filter(|n| {
            if cpu_short {
                n.each.cpu > 0.0
            } else {
                n.each.memory > 0.0
            }
        })
        .map(|n| match cpu_short {
            true => (n, (n.each.cpu * ratio * 1000.0).floor() as i64, "m"),
            false => (
                n,
                (n.each.memory * ratio / (1024.0 * 1024.0)).floor() as i64,
                "Mi",
            ),
        })
        // A request already at the smallest unit stays as it is.
        .filter(|(_, amount, _)| *amount >= 1 || ratio <= 0.0)
        .map(|(n, amount, unit)| {
            (amount >= 1).then(|| {
                format!(
                    "`--set services.{}.resources.requests.{field}={amount}{unit}`",
                    n.service
                )
            })
        })
        .collect::<Option<_>>()?;
    if sets.is_empty() {
        return None;
    }
    Some(sets.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cpu: &str, memory: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    }

    fn pod(node: &str, cpu: &str, ours: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"ours": ours.to_string()}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap()
    }

    fn deployment(name: &str, replicas: i32, cpu: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {},
                     "strategy": {"rollingUpdate": {"maxSurge": 1}},
                     "template": {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}]}}}
        }))
        .unwrap()
    }

    fn ours(pod: &Pod) -> bool {
        pod.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l["ours"] == "true")
    }

    #[test]
    fn the_rolling_update_fits_with_room_to_spare() {
        let finding = check(
            &[
                deployment("backend", 2, "250m"),
                deployment("frontend", 2, "250m"),
            ],
            &[node("minikube", "4", "8Gi")],
            &[
                pod("minikube", "750m", false),
                pod("minikube", "250m", true),
            ],
            &ours,
            true,
        );
        assert_eq!(finding.level, super::super::Level::Ok, "{finding:?}");
        // The running pods and one new pod at a time: 4 × 250m + 250m.
        assert!(finding.message.contains("1250m CPU"), "{}", finding.message);
        assert!(
            finding.message.contains("2000m CPU"),
            "the release's own pod is not counted: {}",
            finding.message
        );
    }

    #[test]
    fn a_node_too_small_for_the_update_names_the_service_and_the_fix() {
        // 2 CPUs, 1250m used by other work: 750m left, the update wants 4 × 250m + one new 250m.
        let finding = check(
            &[
                deployment("backend", 2, "250m"),
                deployment("frontend", 2, "250m"),
            ],
            &[node("minikube", "2", "8Gi")],
            &[pod("minikube", "1250m", false)],
            &ours,
            true,
        );
        assert_eq!(finding.level, super::super::Level::Error);
        assert!(
            finding.message.contains("service `frontend` does not fit"),
            "{}",
            finding.message
        );
        assert!(
            finding.message.contains("2 pods (replicas)"),
            "{}",
            finding.message
        );
        let fix = finding.fix.unwrap();
        assert!(
            fix.contains("`--set services.backend.resources.requests.cpu=142m` `--set services.frontend.resources.requests.cpu=142m`"),
            "{fix}"
        );
        assert!(fix.contains("minikube start --cpus 4 --memory 8g"), "{fix}");
        let elsewhere = check(
            &[deployment("backend", 2, "3")],
            &[node("n", "2", "8Gi")],
            &[],
            &ours,
            false,
        );
        assert!(
            elsewhere
                .fix
                .unwrap()
                .contains("`--set services.backend.resources.requests.cpu=633m`")
        );
    }

    #[test]
    fn percentages_round_up_and_unready_nodes_do_not_count() {
        let mut d = deployment("backend", 3, "100m");
        d.spec
            .as_mut()
            .unwrap()
            .strategy
            .as_mut()
            .unwrap()
            .rolling_update
            .as_mut()
            .unwrap()
            .max_surge = Some(IntOrString::String("25%".into()));
        assert_eq!(rolling_pods(&d), 4);
        let mut unready = node("n", "8", "8Gi");
        unready.status.as_mut().unwrap().conditions = None;
        let finding = check(&[d], &[unready], &[], &ours, false);
        assert_eq!(finding.level, super::super::Level::Error);
        assert!(finding.message.contains("no node"));
    }
}
