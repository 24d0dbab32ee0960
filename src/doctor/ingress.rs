//! Whether the Ingress will be served: an IngressClass named like `ingress.className` (or a
//! default class) exists, its controller's pods are ready (ingress-nginx's, found by their
//! labels), and the host resolves to the Ingress's address or the node's (Minikube's IP); else
//! the `/etc/hosts` line to add.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::ListParams;

use super::{Check, Finding};
use crate::cluster::Cluster;
use crate::plan::{IngressPlan, Plan};

/// The controller name ingress-nginx registers, and its pods' labels.
const NGINX: &str = "k8s.io/ingress-nginx";
const NGINX_PODS: &str =
    "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller";
const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// How long the host's name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

fn enable(minikube: bool) -> String {
    match minikube {
        true => "`minikube addons enable ingress`".to_owned(),
        false => "install ingress-nginx (`kubectl apply -f https://raw.githubusercontent.com/kubernetes/ingress-nginx/main/deploy/static/provider/cloud/deploy.yaml`)".to_owned(),
    }
}

/// Every ingress finding for `plan`; `nodes` were listed for the capacity check.
pub async fn check(cluster: &Cluster, plan: &Plan, nodes: &[Node], minikube: bool) -> Vec<Finding> {
    let Some(ingress) = &plan.ingress else {
        return vec![Finding::ok(
            Check::Ingress,
            "`ingress.enabled` is false: nothing to check",
        )];
    };
    let mut findings = vec![class(cluster, ingress, minikube).await];
    findings.push(host(cluster, plan, ingress, nodes).await);
    findings
}

async fn class(cluster: &Cluster, ingress: &IngressPlan, minikube: bool) -> Finding {
    let classes: Api<IngressClass> = Api::all(cluster.client.clone());
    let listed = match classes.list(&ListParams::default()).await {
        Ok(listed) => listed.items,
        Err(error) => {
            return Finding::error(
                Check::Ingress,
                format!("cannot list IngressClasses: {}", crate::cluster::short(&error)),
                Some("check that you may read `ingressclasses` (`kubectl auth can-i list ingressclasses`)".to_owned()),
            );
        }
    };
    let names: Vec<String> = listed
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let found = listed.iter().find(|c| match &ingress.class_name {
        Some(name) => c.metadata.name.as_ref() == Some(name),
        None => c
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEFAULT_CLASS))
            .is_some_and(|v| v == "true"),
    });
    let wanted = match &ingress.class_name {
        Some(name) => format!("IngressClass `{name}` (`ingress.className`)"),
        None => "a default IngressClass (`ingress.className` is null)".to_owned(),
    };
    let Some(found) = found else {
        let others = match names.is_empty() {
            true => "the cluster has none".to_owned(),
            false => format!(
                "the cluster has {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let fix = match names.first() {
            Some(other) if !minikube => {
                format!("`--set ingress.className={other}`, or {}", enable(minikube))
            }
            _ => enable(minikube),
        };
        return Finding::error(
            Check::Ingress,
            format!("{wanted} does not exist ({others}): nothing would serve the Ingress"),
            Some(fix),
        );
    };
    let name = found.metadata.name.clone().unwrap_or_default();
    let controller = found
        .spec
        .as_ref()
        .and_then(|s| s.controller.clone())
        .unwrap_or_default();
    if controller != NGINX {
        return Finding::ok(
            Check::Ingress,
            format!(
                "IngressClass `{name}` exists (controller `{controller}`, whose pods are not checked)"
            ),
        );
    }
    controller_pods(cluster, &name, minikube).await
}

async fn controller_pods(cluster: &Cluster, class: &str, minikube: bool) -> Finding {
    let pods: Api<Pod> = Api::all(cluster.client.clone());
    let listed = match pods.list(&ListParams::default().labels(NGINX_PODS)).await {
        Ok(listed) => listed.items,
        Err(error) => {
            return Finding::warning(
                Check::Ingress,
                format!(
                    "IngressClass `{class}` exists, but its controller's pods cannot be listed: {}",
                    crate::cluster::short(&error)
                ),
                "`kubectl get pods -A -l app.kubernetes.io/name=ingress-nginx` shows them",
            );
        }
    };
    let ready = listed.iter().filter(|pod| is_ready(pod)).count();
    match ready {
        0 => Finding::error(
            Check::Ingress,
            format!(
                "IngressClass `{class}` exists, but none of its controller's {} pod(s) is ready",
                listed.len()
            ),
            Some(format!(
                "{}; `kubectl get pods -A -l app.kubernetes.io/name=ingress-nginx` shows why",
                enable(minikube)
            )),
        ),
        n => Finding::ok(
            Check::Ingress,
            format!("IngressClass `{class}`: {n} ready ingress-nginx controller pod(s)"),
        ),
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Where the host should lead: the live Ingress's addresses, else the nodes' internal IPs
/// (Minikube's IP is its node's).
async fn expected(
    cluster: &Cluster,
    plan: &Plan,
    ingress: &IngressPlan,
    nodes: &[Node],
) -> Vec<IpAddr> {
    let api: Api<Ingress> = Api::namespaced(cluster.client.clone(), &plan.namespace);
    let live = api.get_opt(&ingress.name).await.ok().flatten();
    let from_ingress = live
        .and_then(|i| i.status)
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .into_iter()
        .flatten()
        .filter_map(|lb| lb.ip.and_then(|ip| ip.parse().ok()));
    let from_nodes = nodes
        .iter()
        .filter_map(|n| n.status.as_ref()?.addresses.as_ref())
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok());
    let mut all: Vec<IpAddr> = from_ingress.chain(from_nodes).collect();
    all.dedup();
    all
}

async fn host(cluster: &Cluster, plan: &Plan, ingress: &IngressPlan, nodes: &[Node]) -> Finding {
    let Some(host) = &ingress.host else {
        return Finding::ok(
            Check::Ingress,
            "the Ingress has no host: it answers on any name",
        );
    };
    let expected = expected(cluster, plan, ingress, nodes).await;
    let resolved: Vec<IpAddr> = match tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), 80)),
    )
    .await
    {
        Ok(Ok(addresses)) => addresses.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    judge_host(host, &resolved, &expected)
}

/// Pure: whether `host`, resolving to `resolved`, leads to one of `expected`.
pub fn judge_host(host: &str, resolved: &[IpAddr], expected: &[IpAddr]) -> Finding {
    let line = |ip: &IpAddr| {
        format!(
            "`echo \"{ip} {host}\" | sudo tee -a /etc/hosts`, or `todo-deploy open`, which needs no hosts entry"
        )
    };
    if let Some(ip) = resolved.iter().find(|ip| expected.contains(ip)) {
        return Finding::ok(
            Check::Ingress,
            format!("`{host}` resolves to {ip}, the ingress address"),
        );
    }
    let Some(target) = expected.first() else {
        return Finding::warning(
            Check::Ingress,
            format!("`{host}` cannot be checked: neither the Ingress nor a node has an address"),
            "`todo-deploy open` reaches the app through a local gateway",
        );
    };
    let message = match resolved.first() {
        None => format!("`{host}` does not resolve; the ingress address is {target}"),
        Some(other) => format!("`{host}` resolves to {other}, not to the ingress address {target}"),
    };
    Finding::warning(Check::Ingress, message, line(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_must_lead_to_the_ingress() {
        let minikube: IpAddr = "192.168.49.2".parse().unwrap();
        let ok = judge_host("todo.local", &[minikube], &[minikube]);
        assert_eq!(ok.level, super::super::Level::Ok);
        let missing = judge_host("todo.local", &[], &[minikube]);
        assert_eq!(missing.level, super::super::Level::Warning);
        assert!(
            missing
                .fix
                .unwrap()
                .contains("echo \"192.168.49.2 todo.local\" | sudo tee -a /etc/hosts")
        );
        let elsewhere = judge_host("todo.local", &["127.0.0.1".parse().unwrap()], &[minikube]);
        assert!(elsewhere.message.contains("resolves to 127.0.0.1, not to"));
    }
}
