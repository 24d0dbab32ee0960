//! Where the app answers: the Ingress's URL when its host leads to the ingress address (or it
//! has no host and an address), else a local gateway ([`gateway`]) that routes by the Ingress's
//! own path rules ([`routes`]) over port-forwards through the API server, so the frontend's
//! relative `/api` calls work as behind the Ingress. No root, no `minikube tunnel`.

pub mod gateway;
pub mod routes;

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;

use crate::cluster::Cluster;
use crate::plan::Plan;
use routes::Routes;

/// How long the host's name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "release `{release}` has no Ingress in namespace `{namespace}` and the configuration none (`ingress.enabled` is false)"
    )]
    NoRoutes { release: String, namespace: String },
    #[error("cannot read Ingress `{name}`")]
    Read {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

impl crate::outcome::Diagnose for OpenError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            OpenError::NoRoutes { .. } => {
                "deploy it with `todo-deploy up`, or enable the Ingress (`--set ingress.enabled=true`)".to_owned()
            }
            OpenError::Read { .. } => "check that you may read Ingresses in the namespace (`kubectl auth can-i get ingresses -n NAMESPACE`)".to_owned(),
            OpenError::Bind { port, .. } => format!("port {port} is taken: choose another with `--port N` (`--port 0` takes any free one)"),
        })
    }
}

/// The release's live Ingress, if any.
pub async fn live_ingress(cluster: &Cluster, plan: &Plan) -> Result<Option<Ingress>, OpenError> {
    let Some(planned) = &plan.ingress else {
        return Ok(None);
    };
    let api: Api<Ingress> = Api::namespaced(cluster.client.clone(), &plan.namespace);
    api.get_opt(&planned.name)
        .await
        .map_err(|source| OpenError::Read {
            name: planned.name.clone(),
            source,
        })
}

/// The routes the gateway applies: the live Ingress's, else the configuration's.
pub fn routes(plan: &Plan, live: Option<&Ingress>) -> Result<Routes, OpenError> {
    match (live, &plan.ingress) {
        (Some(ingress), _) => Ok(Routes::from_ingress(ingress)),
        (None, Some(planned)) => Ok(Routes::from_plan(planned)),
        (None, None) => Err(OpenError::NoRoutes {
            release: plan.release.clone(),
            namespace: plan.namespace.clone(),
        }),
    }
}

/// The Ingress's URL when it is reachable from here: its host resolves to one of its
/// addresses (what the controller wrote in its status), or it has no host and an address.
pub async fn reachable_url(live: Option<&Ingress>) -> Option<String> {
    let ingress = live?;
    let addresses: Vec<IpAddr> = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|lb| lb.ip.as_deref()?.parse().ok())
        .collect();
    let host = ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .and_then(|rules| rules.iter().find_map(|rule| rule.host.clone()));
    let Some(host) = host else {
        return addresses.first().map(|ip| format!("http://{ip}/"));
    };
    let lookup = tokio::net::lookup_host((host.as_str(), 80));
    let resolved: Vec<IpAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    resolved
        .iter()
        .any(|ip| addresses.contains(ip))
        .then(|| format!("http://{host}/"))
}
