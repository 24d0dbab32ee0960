//! The checks that ask Docker or the API server, each turning what it learnt (or the error) into
//! findings. Nothing here changes anything.

use bollard::Docker;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;

use super::{Check, Finding, capacity, image_user};
use crate::cluster::Cluster;
use crate::docker;
use crate::load::Loader;
use crate::plan::Plan;
use crate::progress::Events;
use crate::render::Manifest;

/// The oldest Kubernetes minor version `up` supports (1.24).
const MIN_MINOR: u32 = 24;

/// The engine `docker` would use (named with its context), its API version.
pub async fn docker(env: &dyn Fn(&str) -> Option<String>) -> (Finding, Option<Docker>) {
    match docker::connect_endpoint(env).await {
        Ok((client, endpoint)) => {
            let version = client.version().await.ok();
            let api = version
                .as_ref()
                .and_then(|v| v.api_version.clone())
                .unwrap_or_else(|| "?".to_owned());
            let engine = version
                .and_then(|v| v.version)
                .map(|v| format!(", Docker {v}"))
                .unwrap_or_default();
            let message = format!(
                "Engine API {api}{engine} at `{}` ({})",
                endpoint.host,
                endpoint.origin.describe()
            );
            (Finding::ok(Check::Docker, message), Some(client))
        }
        Err(error) => (Finding::from_error(Check::Docker, &error), None),
    }
}

/// The cluster answers, with a server version of 1.24 or newer.
pub async fn cluster(plan: &Plan, events: &Events) -> (Vec<Finding>, Option<Cluster>) {
    let cluster = match crate::cluster::connect(&plan.cluster, events).await {
        Ok(cluster) => cluster,
        Err(error) => return (vec![Finding::from_error(Check::Cluster, &error)], None),
    };
    let finding = match cluster.client.apiserver_version().await {
        Ok(info) => {
            let minor: u32 = info.minor.trim_end_matches('+').parse().unwrap_or(0);
            let at = format!("context `{}` at `{}`", cluster.context, cluster.server);
            match info.major == "1" && minor >= MIN_MINOR {
                true => Finding::ok(
                    Check::Cluster,
                    format!("{at} answers: Kubernetes {}", info.git_version),
                ),
                false => Finding::error(
                    Check::Cluster,
                    format!(
                        "{at} runs Kubernetes {}; todo-deploy needs 1.{MIN_MINOR} or newer",
                        info.git_version
                    ),
                    Some(
                        "upgrade the cluster, e.g. `minikube start --kubernetes-version=stable`"
                            .to_owned(),
                    ),
                ),
            }
        }
        Err(error) => Finding::error(
            Check::Cluster,
            format!(
                "the API server does not say its version: {}",
                crate::cluster::short(&error)
            ),
            None,
        ),
    };
    let permissions = permissions(&cluster, &plan.namespace).await;
    (vec![finding, permissions], Some(cluster))
}

/// The credentials may do what `up` does in the release's namespace: one SelfSubjectAccessReview
/// per verb and resource, from the same list as `up`'s own access check and `todo-deploy rbac`.
async fn permissions(cluster: &Cluster, namespace: &str) -> Finding {
    use crate::access::{self, Answer, Command};
    match access::check(&cluster.client, namespace, Command::Up).await {
        Ok(Answer {
            wanted, missing, ..
        }) if missing.is_empty() => Finding::ok(
            Check::Permissions,
            format!(
                "the credentials have all {} permissions `up` needs in namespace `{namespace}`",
                wanted.len()
            ),
        ),
        Ok(Answer { missing, .. }) => Finding::error(
            Check::Permissions,
            access::summary(&missing, namespace),
            Some(format!(
                "a cluster admin can grant them: `todo-deploy rbac --namespace {namespace} --user YOU | kubectl apply -f -`, or bind the built-in `edit` ClusterRole in the namespace"
            )),
        ),
        Err(access::AccessError::Unavailable(error)) => Finding::warning(
            Check::Permissions,
            format!(
                "the cluster does not answer SelfSubjectAccessReviews ({}); what `up` may do is not known",
                crate::cluster::short(&error)
            ),
            "`up` still works; a refused call says what is missing",
        ),
    }
}

/// The loader chosen from the context, and whether each node's runtime answers.
pub async fn loader(
    docker: Option<&Docker>,
    plan: &Plan,
    cluster: &Cluster,
    env: &dyn Fn(&str) -> Option<String>,
    events: &Events,
) -> (Vec<Finding>, Option<Loader>) {
    let Some(docker) = docker else {
        return (
            vec![Finding::skipped(
                Check::Loader,
                "needs Docker, which does not answer",
            )],
            None,
        );
    };
    let loader =
        match crate::load::resolve(docker, &plan.cluster, &cluster.context, env, events).await {
            Ok(loader) => loader,
            Err(error) => return (vec![Finding::from_error(Check::Loader, &error)], None),
        };
    let mut findings = vec![Finding::ok(
        Check::Loader,
        format!("`{}`: {}", plan.cluster.loader.as_str(), loader.summary()),
    )];
    for (node, answer) in loader.probe_nodes().await {
        findings.push(match answer {
            Ok(()) => Finding::ok(Check::Loader, format!("{node} answers (`ctr version`)")),
            Err(why) => Finding::error(Check::Loader, format!("{node} cannot import images: {why}"), Some("`docker ps` shows whether the node runs; restart the cluster (`minikube start`, or recreate the kind cluster)".to_owned())),
        });
    }
    if let Some(endpoint) = loader.build_engine() {
        findings.push(match endpoint.connect().await {
            Ok(_) => Finding::ok(
                Check::Docker,
                format!(
                    "Minikube's engine at `{}` answers: images are built there",
                    endpoint.host
                ),
            ),
            Err(error) => Finding::from_error(Check::Docker, &error),
        });
    }
    (findings, Some(loader))
}

/// Whether the cluster is Minikube's: its nodes carry Minikube's label.
pub fn is_minikube(nodes: &[Node]) -> bool {
    nodes.iter().any(|n| {
        n.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("minikube.k8s.io/name"))
    })
}

/// Lists the nodes and every pod, and judges the rolling update's fit.
pub async fn capacity(
    cluster: &Cluster,
    plan: &Plan,
    manifests: &[Manifest],
) -> (Finding, Vec<Node>) {
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let pods: Api<Pod> = Api::all(cluster.client.clone());
    let params = ListParams::default();
    let listed = tokio::try_join!(nodes.list(&params), pods.list(&params));
    let (nodes, pods) = match listed {
        Ok((nodes, pods)) => (nodes.items, pods.items),
        Err(error) => {
            let finding = Finding::warning(
                Check::Capacity,
                format!(
                    "cannot list nodes and pods: {}",
                    crate::cluster::short(&error)
                ),
                "a cluster-wide read of nodes and pods needs `kubectl auth can-i list nodes` to say yes",
            );
            return (finding, Vec::new());
        }
    };
    let deployments: Vec<_> = manifests
        .iter()
        .filter_map(|m| match m {
            Manifest::Deployment(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let ours = |pod: &Pod| {
        pod.metadata.namespace.as_deref() == Some(plan.namespace.as_str())
            && pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::render::labels::INSTANCE))
                == Some(&plan.release)
    };
    let finding = capacity::check(&deployments, &nodes, &pods, &ours, is_minikube(&nodes));
    (finding, nodes)
}

/// Under `runAsNonRoot`, each service's user: the built image's, else its Dockerfile's.
pub async fn image_users(docker: Option<&Docker>, plan: &Plan) -> Vec<Finding> {
    if !plan.security.run_as_non_root || plan.security.run_as_user.is_some() {
        return vec![Finding::ok(
            Check::Config,
            "the configuration is valid; images may run as any user (`security.runAsNonRoot` is off or `runAsUser` is set)",
        )];
    }
    let mut findings = vec![Finding::ok(Check::Config, "the configuration is valid")];
    for service in &plan.services {
        let reference = service.image.to_string();
        let inspected = match docker {
            Some(docker) => docker.inspect_image(&reference).await.ok(),
            None => None,
        };
        let (user, from) = match inspected
            .and_then(|i| i.config)
            .map(|c| c.user.unwrap_or_default())
        {
            Some(user) => (user, format!("image `{reference}`")),
            None => match std::fs::read_to_string(&service.build.dockerfile) {
                Ok(text) => (
                    image_user::from_dockerfile(&text),
                    format!("`{}`", service.build.dockerfile.display()),
                ),
                Err(_) => continue,
            },
        };
        findings.push(match image_user::refused(&user) {
            None => Finding::ok(
                Check::Config,
                format!("{}: {from} runs as user {user} (non-root)", service.name),
            ),
            Some(why) => Finding::error(
                Check::Config,
                format!(
                    "{}: {from} {why}; `security.runAsNonRoot` would keep its pods from starting",
                    service.name
                ),
                Some(format!(
                    "add `USER 10001` to `{}`, or set `security.runAsUser`",
                    service.build.dockerfile.display()
                )),
            ),
        });
    }
    findings
}
