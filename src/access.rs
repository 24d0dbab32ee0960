//! What each command may need to be allowed to do in the cluster, and which of it the current
//! credentials may not: the stage that owns [`Permission`], the list per command
//! ([`for_command`], derived from the kinds a release renders and the calls the stages make for
//! records, the lock, the rollout watch, events and logs), and [`missing`]: one
//! SelfSubjectRulesReview, then a SelfSubjectAccessReview for each permission its rules do not
//! surely grant. `todo-deploy rbac` prints a Role
//! from the same list ([`role_rules`]), so the check and the grant cannot drift.
//!
//! Use from a command (its preflight, a `doctor` check):
//! `access::check(&cluster.client, namespace, access::Command::Up)` answers the permissions `up`
//! needs (creating the namespace too when it is missing) and which of them it may not use, or an
//! [`AccessError`] when the cluster cannot say (access reviews forbidden or not served): then
//! nothing is known.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::{Api, PostParams};

use crate::render::Kind;

/// How many access reviews are in flight at once.
const CONCURRENT_REVIEWS: usize = 8;

/// A verb of the Kubernetes API, as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// Where a permission applies: the release's namespace, or the whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Namespace,
    Cluster,
}

/// A resource type (or one of its subresources) by API group and plural name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceType {
    /// The API group, "" for the core group.
    pub group: String,
    /// The plural resource name, as in URLs (`deployments`).
    pub plural: String,
    /// A subresource, e.g. `log` of `pods`.
    pub subresource: Option<String>,
}

impl ResourceType {
    fn of<K: kube::Resource<DynamicType = ()>>() -> ResourceType {
        ResourceType {
            group: K::group(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            subresource: None,
        }
    }

    fn of_kind(kind: Kind) -> ResourceType {
        let resource = kind.resource();
        ResourceType {
            group: resource.group,
            plural: resource.plural,
            subresource: None,
        }
    }

    fn sub(mut self, subresource: &str) -> ResourceType {
        self.subresource = Some(subresource.to_owned());
        self
    }

    /// How RBAC rules name it: `pods` or `pods/log`.
    pub fn rule_name(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.plural),
            None => self.plural.clone(),
        }
    }
}

impl fmt::Display for ResourceType {
    /// `deployments.apps`, `configmaps`, `pods/log`: as `kubectl auth can-i` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group.as_str() {
            "" => f.write_str(&self.rule_name()),
            group => write!(f, "{}.{group}", self.rule_name()),
        }
    }
}

/// One thing a command does in the cluster: a verb on a resource type, in a scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub verb: Verb,
    pub resource: ResourceType,
    pub scope: Scope,
}

impl Permission {
    fn new(verb: Verb, resource: ResourceType) -> Permission {
        Permission {
            verb,
            resource,
            scope: Scope::Namespace,
        }
    }

    /// Creating the release's namespace: needed only when it does not exist, and only a
    /// cluster-wide grant gives it (a Role cannot).
    pub fn create_namespace() -> Permission {
        Permission {
            verb: Verb::Create,
            resource: ResourceType::of::<Namespace>(),
            scope: Scope::Cluster,
        }
    }
}

impl fmt::Display for Permission {
    /// `create deployments.apps`; `create namespaces (cluster-wide)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb.as_str(), self.resource)?;
        if self.scope == Scope::Cluster {
            f.write_str(" (cluster-wide)")?;
        }
        Ok(())
    }
}

/// The commands whose needs are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Up,
    Upgrade,
    Rollback,
    Down,
    Status,
    History,
    Dev,
    Logs,
}

impl Command {
    /// The command's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Up => "up",
            Command::Upgrade => "upgrade",
            Command::Rollback => "rollback",
            Command::Down => "down",
            Command::Status => "status",
            Command::History => "history",
            Command::Dev => "dev",
            Command::Logs => "logs",
        }
    }

    /// Whether the command changes the cluster (and so checks its permissions first).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Command::Up | Command::Upgrade | Command::Rollback | Command::Down | Command::Dev
        )
    }
}

/// Everything `command` may do in the release's namespace, sorted, each once. The Namespace
/// itself is read (`get namespaces`); creating it is [`Permission::create_namespace`], asked
/// for only when it is missing. The release lock needs no Lease rights: where Leases are
/// forbidden it is a ConfigMap (`update configmaps` for its compare-and-swap).
pub fn for_command(command: Command) -> Vec<Permission> {
    let mut all = BTreeSet::new();
    match command {
        Command::Up | Command::Upgrade | Command::Rollback => {
            all.extend(deploying());
        }
        Command::Dev => {
            all.extend(deploying());
            all.extend(logs());
        }
        Command::Down => {
            all.extend(namespace_read());
            all.extend(removing());
            all.extend(records(&[Verb::List, Verb::Get, Verb::Patch, Verb::Delete]));
            all.extend(lock());
            all.extend(pod_watch());
        }
        Command::Status => {
            all.extend(records(&[Verb::List]));
            let read = [Kind::Deployment, Kind::Service, Kind::Ingress];
            all.extend(read.map(|kind| Permission::new(Verb::List, ResourceType::of_kind(kind))));
            all.insert(Permission::new(Verb::List, ResourceType::of::<Pod>()));
            all.insert(Permission::new(Verb::List, ResourceType::of::<Event>()));
        }
        Command::History => {
            all.extend(records(&[Verb::List]));
        }
        Command::Logs => {
            all.extend(logs());
        }
    }
    all.into_iter().collect()
}

/// `up`, `upgrade` and `rollback`: read the namespace, apply every kind (server-side apply is
/// `patch`, and `create` when the object is new), prune (list, delete), keep records and the
/// lock, watch the rollout and read a crashing container's log.
fn deploying() -> Vec<Permission> {
    let mut all = namespace_read();
    for kind in Kind::ALL.into_iter().filter(|kind| kind.namespaced()) {
        let resource = ResourceType::of_kind(kind);
        all.extend(
            [
                Verb::Get,
                Verb::List,
                Verb::Create,
                Verb::Patch,
                Verb::Delete,
            ]
            .map(|verb| Permission::new(verb, resource.clone())),
        );
    }
    all.extend(records(&[
        Verb::List,
        Verb::Get,
        Verb::Create,
        Verb::Patch,
        Verb::Delete,
    ]));
    all.extend(lock());
    all.extend(rollout_watch());
    all.push(Permission::new(
        Verb::Get,
        ResourceType::of::<Pod>().sub("log"),
    ));
    all
}

fn namespace_read() -> Vec<Permission> {
    vec![Permission::new(Verb::Get, ResourceType::of::<Namespace>())]
}

/// `down`: list every kind the release may hold and delete what it does.
fn removing() -> Vec<Permission> {
    Kind::namespaced_in_delete_order()
        .flat_map(|kind| {
            let resource = ResourceType::of_kind(kind);
            [Verb::List, Verb::Delete].map(|verb| Permission::new(verb, resource.clone()))
        })
        .collect()
}

/// The revision records (Secrets).
fn records(verbs: &[Verb]) -> Vec<Permission> {
    verbs
        .iter()
        .map(|verb| Permission::new(*verb, ResourceType::of::<Secret>()))
        .collect()
}

/// The release lock as a ConfigMap: read, made, renewed by compare-and-swap, removed.
fn lock() -> Vec<Permission> {
    [Verb::Get, Verb::Create, Verb::Update, Verb::Delete]
        .map(|verb| Permission::new(verb, ResourceType::of::<ConfigMap>()))
        .to_vec()
}

/// The rollout's watches: Deployments, ReplicaSets, pods and events.
fn rollout_watch() -> Vec<Permission> {
    let replica_sets = ResourceType {
        group: "apps".to_owned(),
        plural: "replicasets".to_owned(),
        subresource: None,
    };
    let watched = [
        ResourceType::of_kind(Kind::Deployment),
        replica_sets,
        ResourceType::of::<Pod>(),
        ResourceType::of::<Event>(),
    ];
    watched
        .into_iter()
        .flat_map(|r| [Verb::List, Verb::Watch].map(|verb| Permission::new(verb, r.clone())))
        .collect()
}

fn pod_watch() -> Vec<Permission> {
    [Verb::List, Verb::Watch]
        .map(|verb| Permission::new(verb, ResourceType::of::<Pod>()))
        .to_vec()
}

/// `logs`: the pods, their logs, and the Secret whose values are masked in them.
fn logs() -> Vec<Permission> {
    let mut all = pod_watch();
    all.push(Permission::new(
        Verb::Get,
        ResourceType::of::<Pod>().sub("log"),
    ));
    all.push(Permission::new(Verb::Get, ResourceType::of::<Secret>()));
    all
}

/// The Lease a lock prefers, for messages that say what is not needed.
pub fn lease() -> ResourceType {
    ResourceType::of::<Lease>()
}

/// Why the cluster could not say what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot ask the cluster what these credentials may do (SelfSubjectAccessReview)")]
    Unavailable(#[source] kube::Error),
}

impl crate::outcome::Diagnose for AccessError {}

/// The permissions of `wanted` the current credentials lack in `namespace`, in `wanted`'s
/// order. One SelfSubjectRulesReview first: what its rules surely grant needs no more questions
/// (on an RBAC cluster with every permission granted, that is one round trip for the whole
/// list); every other permission gets a SelfSubjectAccessReview, at most
/// [`CONCURRENT_REVIEWS`] at once, and only those decide what is missing (a rules review may be
/// incomplete where other authorizers than RBAC run). Any access review that fails (forbidden,
/// not served, unreachable) makes the answer unknown.
pub async fn missing(
    client: &kube::Client,
    namespace: &str,
    wanted: &[Permission],
) -> Result<Vec<Permission>, AccessError> {
    let rules = granted_rules(client, namespace).await.unwrap_or_default();
    missing_beyond(client, namespace, wanted, &rules).await
}

/// What `command` needs in `namespace` and which of it the credentials lack.
#[derive(Debug)]
pub struct Answer {
    /// Every permission asked: the command's, and creating the namespace when it is missing
    /// (for a command that creates it).
    pub wanted: Vec<Permission>,
    pub missing: Vec<Permission>,
    /// The namespace does not exist (or cannot be read, which reads the same to a user
    /// without rights there).
    pub namespace_absent: bool,
}

/// [`missing`] for `command`: whether the namespace exists and the rules review are asked
/// together, then access reviews for what the rules do not surely grant.
pub async fn check(
    client: &kube::Client,
    namespace: &str,
    command: Command,
) -> Result<Answer, AccessError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let (found, rules) = tokio::join!(
        namespaces.get_opt(namespace),
        granted_rules(client, namespace)
    );
    let namespace_absent = matches!(found, Ok(None));
    let mut wanted = for_command(command);
    if namespace_absent && command != Command::Down {
        wanted.push(Permission::create_namespace());
    }
    let missing = missing_beyond(client, namespace, &wanted, &rules.unwrap_or_default()).await?;
    Ok(Answer {
        wanted,
        missing,
        namespace_absent,
    })
}

/// The permissions of `wanted` that `rules` do not surely grant and an access review refuses.
async fn missing_beyond(
    client: &kube::Client,
    namespace: &str,
    wanted: &[Permission],
    rules: &[ResourceRule],
) -> Result<Vec<Permission>, AccessError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answers: Vec<Result<(usize, bool), kube::Error>> =
        futures::stream::iter(wanted.iter().enumerate())
            .filter(|(_, permission)| std::future::ready(!surely_granted(rules, permission)))
            .map(|(index, permission)| {
                let api = api.clone();
                let review = review(permission, namespace);
                async move {
                    let answer = api.create(&PostParams::default(), &review).await?;
                    let allowed = answer.status.is_some_and(|s| s.allowed);
                    Ok((index, allowed))
                }
            })
            .buffer_unordered(CONCURRENT_REVIEWS)
            .collect()
            .await;
    let mut denied = BTreeSet::new();
    for answer in answers {
        let (index, allowed) = answer.map_err(AccessError::Unavailable)?;
        if !allowed {
            denied.insert(index);
        }
    }
    Ok(denied.into_iter().map(|i| wanted[i].clone()).collect())
}

/// The resource rules the credentials have in `namespace` (one SelfSubjectRulesReview); none
/// when the cluster does not answer one, which leaves every permission to an access review.
async fn granted_rules(client: &kube::Client, namespace: &str) -> Option<Vec<ResourceRule>> {
    let api: Api<SelfSubjectRulesReview> = Api::all(client.clone());
    let review = SelfSubjectRulesReview {
        metadata: Default::default(),
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        status: None,
    };
    let answer = api.create(&PostParams::default(), &review).await.ok()?;
    answer.status.map(|status| status.resource_rules)
}

/// Whether a rule surely grants `permission` in the namespace, for any object name. A rule
/// limited to `resourceNames`, and a cluster-scoped permission (a rules review answers for one
/// namespace), are left to an access review.
fn surely_granted(rules: &[ResourceRule], permission: &Permission) -> bool {
    if permission.scope == Scope::Cluster {
        return false;
    }
    let resource = &permission.resource;
    let any = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
    };
    let resource_matches = |rule: &ResourceRule| {
        rule.resources.as_ref().is_some_and(|listed| {
            listed.iter().any(|r| {
                r == "*"
                    || *r == resource.rule_name()
                    || resource
                        .subresource
                        .as_ref()
                        .is_some_and(|sub| *r == format!("*/{sub}"))
            })
        })
    };
    rules.iter().any(|rule| {
        rule.resource_names.as_ref().is_none_or(Vec::is_empty)
            && rule
                .verbs
                .iter()
                .any(|v| v == "*" || v == permission.verb.as_str())
            && any(&rule.api_groups, &resource.group)
            && resource_matches(rule)
    })
}

fn review(permission: &Permission, namespace: &str) -> SelfSubjectAccessReview {
    let resource = &permission.resource;
    let scoped = permission.scope == Scope::Namespace;
    // A Namespace is read by its own name, "in" itself, as the API server sees that request.
    let name = (resource.plural == "namespaces" && scoped).then(|| namespace.to_owned());
    SelfSubjectAccessReview {
        metadata: Default::default(),
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: scoped.then(|| namespace.to_owned()),
                verb: Some(permission.verb.as_str().to_owned()),
                group: Some(resource.group.clone()),
                resource: Some(resource.plural.clone()),
                subresource: resource.subresource.clone(),
                name,
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// `missing: create deployments.apps, patch ingresses.networking.k8s.io in namespace todo`.
pub fn summary(missing: &[Permission], namespace: &str) -> String {
    let (cluster, local): (Vec<&Permission>, Vec<&Permission>) =
        missing.iter().partition(|p| p.scope == Scope::Cluster);
    let list = |ps: &[&Permission]| {
        ps.iter()
            .map(|p| format!("{} {}", p.verb.as_str(), p.resource))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !local.is_empty() {
        parts.push(format!("{} in namespace {namespace}", list(&local)));
    }
    if !cluster.is_empty() {
        parts.push(format!("{} cluster-wide", list(&cluster)));
    }
    format!("missing: {}", parts.join("; "))
}

/// The namespaced permissions as Role rules: one rule per API group and set of verbs, the
/// resources of each sorted; a rule per group keeps the Role short and reviewable.
pub fn role_rules(permissions: &[Permission]) -> Vec<PolicyRule> {
    let mut verbs_of: BTreeMap<(String, String), BTreeSet<Verb>> = BTreeMap::new();
    for p in permissions.iter().filter(|p| p.scope == Scope::Namespace) {
        let key = (p.resource.group.clone(), p.resource.rule_name());
        verbs_of.entry(key).or_default().insert(p.verb);
    }
    let mut rules: BTreeMap<(String, Vec<Verb>), Vec<String>> = BTreeMap::new();
    for ((group, resource), verbs) in verbs_of {
        let verbs: Vec<Verb> = verbs.into_iter().collect();
        rules.entry((group, verbs)).or_default().push(resource);
    }
    rules
        .into_iter()
        .map(|((group, verbs), resources)| PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources),
            verbs: verbs.iter().map(|v| v.as_str().to_owned()).collect(),
            ..Default::default()
        })
        .collect()
}

/// Every permission of the commands that use the release's namespace: what a Role for a
/// developer of this release grants.
pub fn for_every_command() -> Vec<Permission> {
    let commands = [
        Command::Up,
        Command::Upgrade,
        Command::Rollback,
        Command::Down,
        Command::Status,
        Command::History,
        Command::Dev,
        Command::Logs,
    ];
    let all: BTreeSet<Permission> = commands.into_iter().flat_map(for_command).collect();
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: serde_json::Value) -> Vec<ResourceRule> {
        serde_json::from_value(json).unwrap()
    }

    fn find(list: &[Permission], text: &str) -> Permission {
        list.iter().find(|p| p.to_string() == text).unwrap().clone()
    }

    #[test]
    fn a_rules_review_grants_by_verb_group_and_resource_or_wildcard() {
        let up = for_command(Command::Up);
        let edit_like = rules(serde_json::json!([
            {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["create", "patch", "get"]},
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["only-this"], "verbs": ["*"]},
        ]));
        let granted = |text: &str| surely_granted(&edit_like, &find(&up, text));
        assert!(granted("create deployments.apps"));
        assert!(granted("get pods/log"));
        assert!(!granted("delete deployments.apps"), "verb not listed");
        assert!(!granted("create secrets"), "resource not listed");
        assert!(
            !granted("create configmaps"),
            "a rule limited to names is left to an access review"
        );
        let admin =
            rules(serde_json::json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
        assert!(
            up.iter()
                .all(|p| p.scope == Scope::Cluster || surely_granted(&admin, p))
        );
        let cluster = Permission::create_namespace();
        assert!(
            !surely_granted(&admin, &cluster),
            "a rules review answers for one namespace; cluster scope is asked apart"
        );
        let any_log = rules(
            serde_json::json!([{"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}]),
        );
        assert!(surely_granted(&any_log, &find(&up, "get pods/log")));
        assert!(!surely_granted(&any_log, &find(&up, "list pods")));
    }

    fn has(list: &[Permission], text: &str) -> bool {
        list.iter().any(|p| p.to_string() == text)
    }

    #[test]
    fn up_needs_apply_prune_records_lock_and_watches_but_no_lease() {
        let up = for_command(Command::Up);
        for needed in [
            "get namespaces",
            "create deployments.apps",
            "patch deployments.apps",
            "delete ingresses.networking.k8s.io",
            "patch horizontalpodautoscalers.autoscaling",
            "create secrets",
            "update configmaps",
            "watch replicasets.apps",
            "watch events",
            "get pods/log",
        ] {
            assert!(has(&up, needed), "up lacks {needed}");
        }
        assert!(!up.iter().any(|p| p.resource == lease()));
        assert!(!up.iter().any(|p| p.scope == Scope::Cluster));
        let mut sorted = up.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, up);
    }

    #[test]
    fn read_only_commands_only_read() {
        for command in [Command::Status, Command::History, Command::Logs] {
            assert!(!command.writes());
            for p in for_command(command) {
                assert!(
                    matches!(p.verb, Verb::Get | Verb::List | Verb::Watch),
                    "{command:?}: {p}"
                );
            }
        }
        assert_eq!(
            for_command(Command::History)
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["list secrets"]
        );
    }

    #[test]
    fn summary_lists_every_missing_permission_once() {
        let missing = vec![
            Permission::new(Verb::Create, ResourceType::of_kind(Kind::Deployment)),
            Permission::new(Verb::Patch, ResourceType::of_kind(Kind::Ingress)),
        ];
        assert_eq!(
            summary(&missing, "todo"),
            "missing: create deployments.apps, patch ingresses.networking.k8s.io in namespace todo"
        );
        let with_namespace = vec![missing[0].clone(), Permission::create_namespace()];
        assert_eq!(
            summary(&with_namespace, "todo"),
            "missing: create deployments.apps in namespace todo; create namespaces cluster-wide"
        );
    }

    #[test]
    fn role_rules_cover_exactly_the_list() {
        let all = for_every_command();
        let rules = role_rules(&all);
        let mut granted = BTreeSet::new();
        for rule in &rules {
            let group = rule.api_groups.as_ref().and_then(|g| g.first()).cloned();
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((
                        group.clone().unwrap_or_default(),
                        resource.clone(),
                        verb.clone(),
                    ));
                }
            }
        }
        let wanted: BTreeSet<_> = all
            .iter()
            .map(|p| {
                (
                    p.resource.group.clone(),
                    p.resource.rule_name(),
                    p.verb.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(granted, wanted);
    }

    #[test]
    fn a_namespace_is_reviewed_by_its_own_name() {
        let get = &namespace_read()[0];
        let review = review(get, "todo");
        let attributes = review.spec.resource_attributes.unwrap_or_default();
        assert_eq!(attributes.name.as_deref(), Some("todo"));
        assert_eq!(attributes.namespace.as_deref(), Some("todo"));
        let create = review_of_create();
        assert_eq!(create.namespace, None);
    }

    fn review_of_create() -> ResourceAttributes {
        review(&Permission::create_namespace(), "todo")
            .spec
            .resource_attributes
            .unwrap_or_default()
    }
}
