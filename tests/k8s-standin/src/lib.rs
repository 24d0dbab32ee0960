//! `k8s-standin`: an in-process stand-in for the Kubernetes API server (1.24
//! shapes by default), with a Deployment/ReplicaSet controller, scheduler,
//! garbage collector, namespace controller and a simulated kubelet, written
//! against the recorded transcripts in `shared/k8s-api-transcripts`.
//!
//! # Use from a test
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use k8s_standin::{Behavior, Fault, Options, StandIn};
//! let standin = StandIn::start(Options { time_scale: 0.02, ..Options::default() }).await?;
//! standin.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"), "standin")?;
//! standin.node_images().add_image("probe-busybox:1", Behavior::serve(&["/api/health"], 8000));
//! standin.node_images().add_image("probe-crash:1", Behavior::crash(3, &["starting backend"]));
//! standin.fail_next(1, Fault::TooManyRequests { retry_after_secs: 1 });
//! // ... run the client under test against standin.url() ...
//! let deploy = standin.get("/apis/apps/v1/namespaces/default/deployments/web");
//! let history = standin.pod_history();
//! # let _ = (deploy, history);
//! # Ok(()) }
//! ```
//!
//! # Public API
//! - [`StandIn::start`] with [`Options`] (server version, time scale, node
//!   name and allocatable, watch history size); [`StandIn::url`],
//!   [`StandIn::write_kubeconfig`].
//! - Identity: [`StandIn::add_user`] and [`StandIn::kubeconfig_with_token`]; RBAC, a 403 per
//!   denial, SelfSubjectAccessReview and TokenRequest in [`authz`]; [`StandIn::audit`].
//! - Inspection: [`StandIn::get`] (an API path), [`StandIn::list`] (kind,
//!   namespace), [`StandIn::pod_history`] ([`PodRecord`]s),
//!   [`StandIn::api`] for direct writes through the same storage code.
//! - Node: [`StandIn::node_images`] → [`NodeImages::add_image`] with a
//!   [`Behavior`], or [`NodeImages::add_image_with`] and an [`ImageConfig`]
//!   (the image's `USER`, what it does on SIGTERM: [`OnSigterm`]).
//! - Faults: [`StandIn::fail_next`], [`StandIn::fail_next_matching`] with
//!   [`Fault`] and [`FaultFilter`]; [`StandIn::status_write_after_next_get`]
//!   (a controller's status-only write between a GET and the next request,
//!   [`StandIn::injected_status_writes`]); [`StandIn::cut_watches`].
//! - Time: [`StandIn::set_time_scale`]; [`StandIn::set_watch_history_limit`]
//!   makes old resourceVersions expire (410) on demand; [`StandIn::settled`]
//!   waits until the controllers have handled every change so far.

pub mod aggregated;
pub mod api;
pub mod authz;
pub mod controllers;
pub mod defaults;
pub mod faults;
pub mod http;
pub mod jsonfmt;
pub mod managed;
pub mod node;
pub mod patch;
pub mod portforward;
pub mod registry;
pub mod resources;
pub mod selectors;
pub mod status;
pub mod store;
pub mod util;
pub mod validation;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub use api::{Api, DeleteOpts, PatchType, Req};
pub use faults::{Fault, FaultFilter, StatusWrite};
pub use node::{Behavior, ImageConfig, NodeImages, OnSigterm};
pub use status::ApiError;
pub use store::PodRecord;

/// Start-up options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Served version: "1.24" (the recorded shapes) or a newer "1.x" (only `/version` differs).
    pub version: String,
    /// Multiplies every controller and kubelet delay (0.02 turns 10 s into 200 ms).
    pub time_scale: f64,
    pub node_name: String,
    pub node_cpu: String,
    pub node_memory: String,
    pub node_pods: i64,
    /// How many change events watches can resume from.
    pub watch_history: usize,
    /// Emit the `MissingClusterDNS` Warning events the recorded minikube kubelet
    /// emits for every ClusterFirst pod (off by default).
    pub missing_cluster_dns_events: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: "1.24".into(),
            time_scale: 1.0,
            node_name: "minikube".into(),
            node_cpu: "4".into(),
            node_memory: "8Gi".into(),
            node_pods: 110,
            watch_history: 10_000,
            missing_cluster_dns_events: false,
        }
    }
}

/// A running stand-in API server. Dropping it stops the server and controllers.
pub struct StandIn {
    ctx: Arc<http::Ctx>,
    addr: SocketAddr,
    images: NodeImages,
    clock: util::TimeScale,
    tasks: Vec<JoinHandle<()>>,
    /// The resourceVersion up to which the controllers have handled every change.
    handled: tokio::sync::watch::Receiver<u64>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The namespaces a new cluster has.
const BOOTSTRAP_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

fn bootstrap(api: &Api, opts: &Options) {
    let ns = resources::by_kind("Namespace");
    if let Some(ns) = ns {
        for n in BOOTSTRAP_NAMESPACES {
            let _ = api.create(
                ns,
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}),
                &Req::by("kube-apiserver"),
            );
        }
    }
    if let Some(nodes) = resources::by_kind("Node") {
        let now = util::now_rfc3339();
        let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": r, "message": m});
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": opts.node_name, "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": opts.node_name, "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/control-plane": "", "minikube.k8s.io/name": opts.node_name}},
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
            "status": {
                "capacity": {"cpu": opts.node_cpu, "memory": opts.node_memory, "pods": opts.node_pods.to_string(), "ephemeral-storage": "100Gi"},
                "allocatable": {"cpu": opts.node_cpu, "memory": opts.node_memory, "pods": opts.node_pods.to_string(), "ephemeral-storage": "100Gi"},
                "conditions": [
                    cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "addresses": [{"type": "InternalIP", "address": "192.0.2.2"}, {"type": "Hostname", "address": opts.node_name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "standin", "systemUUID": "standin", "bootID": "standin", "kernelVersion": "6.0.0",
                    "osImage": "Ubuntu 22.04 LTS", "containerRuntimeVersion": "containerd://1.6.8", "kubeletVersion": format!("v{}.0", opts.version),
                    "kubeProxyVersion": format!("v{}.0", opts.version), "operatingSystem": "linux", "architecture": "amd64"}
            }
        });
        let _ = api.create(nodes, "", node, &Req::by("kubelet"));
    }
    authz::bootstrap(api);
}

impl StandIn {
    /// Starts the server on 127.0.0.1 with a random port, and the controllers.
    pub async fn start(opts: Options) -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let api = Api::new(&opts.version, opts.watch_history.max(1));
        let images = NodeImages::default();
        let logs = node::Logs::default();
        let clock = util::TimeScale::new(opts.time_scale);
        let ctx = Arc::new(http::Ctx {
            api: api.clone(),
            faults: Arc::new(faults::Faults::default()),
            logs: logs.clone(),
            images: images.clone(),
            address: addr.to_string(),
            gate: Arc::new(tokio::sync::Mutex::new(())),
            down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            tokens: Arc::new(authz::Tokens::default()),
            audit: Arc::new(authz::Audit::default()),
        });
        let (idle, handled) = tokio::sync::watch::channel(0);
        let controllers = controllers::start(
            api.clone(),
            clock.clone(),
            images.clone(),
            logs,
            controllers::NodeSpec {
                name: opts.node_name.clone(),
                cpu: opts.node_cpu.clone(),
                memory: opts.node_memory.clone(),
                pods: opts.node_pods,
                missing_cluster_dns_events: opts.missing_cluster_dns_events,
            },
            idle,
        );
        bootstrap(&api, &opts);
        let sctx = ctx.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if sctx.down.load(std::sync::atomic::Ordering::SeqCst) {
                    // Down: the connection is closed at once, before any request.
                    drop(stream);
                    continue;
                }
                let ctx = sctx.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let svc = hyper::service::service_fn(move |req| http::handle(ctx.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        let standin = StandIn {
            ctx,
            addr,
            images,
            clock,
            tasks: vec![server, controllers],
            handled,
        };
        // Ready once the namespace controller has published the bootstrap namespaces' content.
        standin
            .wait_for(Duration::from_secs(10), |s| {
                BOOTSTRAP_NAMESPACES
                    .iter()
                    .all(|ns| {
                        s.get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/default"))
                            .is_some()
                            && s.get(&format!(
                                "/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"
                            ))
                            .is_some()
                    })
                    .then_some(())
            })
            .await
            .ok_or_else(|| std::io::Error::other("the namespace controller did not start"))?;
        Ok(standin)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The storage layer, for direct writes in tests.
    pub fn api(&self) -> &Arc<Api> {
        &self.ctx.api
    }

    /// A kubeconfig for this server (context `context`, namespace "default"), as the cluster's
    /// administrator (`system:masters`).
    pub fn kubeconfig(&self, context: &str) -> String {
        self.kubeconfig_with_token(context, authz::ADMIN_TOKEN)
    }

    /// A kubeconfig for this server whose user authenticates with `token` (one of
    /// [`StandIn::add_user`], or a TokenRequest's).
    pub fn kubeconfig_with_token(&self, context: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\nusers:\n- name: {context}\n  user:\n    token: {token}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\ncurrent-context: {context}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Makes `token` authenticate as the user `name` (groups: `system:authenticated`), who may
    /// do what RoleBindings and ClusterRoleBindings grant `name`: nothing, until one does.
    pub fn add_user(&self, token: &str, name: &str) {
        self.ctx.tokens.add(token, authz::Identity::user(name));
    }

    /// Every authorization decision so far (user, what was asked, whether it was allowed), in
    /// order: what an API server's audit log says of RBAC.
    pub fn audit(&self) -> Vec<authz::Decision> {
        self.ctx.audit.decisions()
    }

    /// Writes [`StandIn::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(context))
    }

    /// Reads an object by API path, e.g. `/apis/apps/v1/namespaces/ns/deployments/web`
    /// or `api/v1/namespaces/ns/pods/p` or `/api/v1/nodes/minikube`.
    pub fn get(&self, api_path: &str) -> Option<Value> {
        let segs: Vec<&str> = api_path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        let (ns, plural, name) = match rest {
            ["namespaces", ns, plural, name] => (*ns, *plural, *name),
            [plural, name] => ("", *plural, *name),
            _ => return None,
        };
        let res = resources::find(group, version, plural)?;
        self.ctx.api.get(res, ns, name).ok()
    }

    /// Lists objects of a kind (e.g. "Pod"), in one namespace or all.
    pub fn list(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(res) = resources::by_kind(kind) else {
            return Vec::new();
        };
        self.ctx
            .api
            .list(
                res,
                namespace,
                &selectors::LabelSelector::default(),
                &selectors::FieldSelector::default(),
            )
            .0
    }

    /// Every change of every pod's (deployment, ready, phase, terminating), in order.
    pub fn pod_history(&self) -> Vec<PodRecord> {
        self.ctx.api.lock().pod_history.clone()
    }

    /// The node's images.
    pub fn node_images(&self) -> NodeImages {
        self.images.clone()
    }

    /// The next `n` requests fail with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.ctx.faults.add(n, fault, FaultFilter::any());
    }

    /// The next `n` requests matching `filter` fail with `fault`.
    pub fn fail_next_matching(&self, n: usize, fault: Fault, filter: FaultFilter) {
        self.ctx.faults.add(n, fault, filter);
    }

    /// Faults injected so far: (method, path, fault).
    pub fn injected_faults(&self) -> Vec<(String, String, Fault)> {
        self.ctx.faults.injected()
    }

    /// Right after the next GET of a single object matching `filter` is
    /// answered, the object's controller writes its status — every
    /// condition's `lastUpdateTime` moves to the current second; spec,
    /// metadata, `observedGeneration` and counts stay — so its
    /// `resourceVersion` moves although nothing a client applied changed, as
    /// on a busy cluster (10 (c)). The server answers no further request
    /// until the write is stored. Applies to objects with such conditions (a
    /// Deployment); other matching GETs are served as usual and leave it
    /// armed. One write per call; see [`StandIn::injected_status_writes`].
    pub fn status_write_after_next_get(&self, filter: FaultFilter) {
        self.ctx.faults.arm_status_write(filter);
    }

    /// The status-only writes [`StandIn::status_write_after_next_get`] made so far.
    pub fn injected_status_writes(&self) -> Vec<StatusWrite> {
        self.ctx.faults.status_writes()
    }

    /// Ends every open watch stream abruptly.
    pub fn cut_watches(&self) {
        let mut st = self.ctx.api.lock();
        st.watchers.retain(|w| {
            if w.res.is_some() {
                let _ = w.tx.send(store::WatchMsg::Cut);
                false
            } else {
                true
            }
        });
    }

    /// Takes the API server down, as if its process stopped: every open watch is cut and every
    /// connection, open or new, is closed without an answer until [`StandIn::come_back`].
    /// The controllers and the kubelet go on (as they would, minus their writes).
    pub fn go_down(&self) {
        self.ctx
            .down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut_watches();
    }

    /// Ends an outage [`StandIn::go_down`] began: the server answers again.
    pub fn come_back(&self) {
        self.ctx
            .down
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Changes the time scale of controller and kubelet delays.
    pub fn set_time_scale(&self, scale: f64) {
        self.clock.set(scale);
    }

    /// Keeps only the last `n` change events for watch resumption; older
    /// resourceVersions get 410 Expired.
    pub fn set_watch_history_limit(&self, n: usize) {
        let mut st = self.ctx.api.lock();
        st.history_limit = n.max(1);
        st.trim_history();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.ctx.api.lock().rv
    }

    /// Returns once the controllers and the kubelet have handled every change
    /// stored so far, and everything those changes caused at once (a new
    /// Deployment: its ReplicaSet and pods exist and are bound). Work their
    /// timers schedule for later (container starts, probes, back-offs,
    /// deadlines) is not waited for. Wait on this, not on time, before
    /// asserting that something did not happen.
    pub async fn settled(&self) {
        let target = self.resource_version();
        let mut handled = self.handled.clone();
        let _ = handled.wait_for(|rv| *rv >= target).await;
    }

    /// Polls `f` until it returns `Some`, or `None` after `timeout`.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&StandIn) -> Option<T>,
    ) -> Option<T> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return Some(v);
            }
            if tokio::time::Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
