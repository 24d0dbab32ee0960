//! Scenarios that run as someone other than the cluster's admin: a ServiceAccount of the
//! scenario's namespace, granted a ClusterRole (the built-in `edit`), a Role of our own (from
//! `todo-deploy rbac`), or nothing; its token comes from the TokenRequest API and goes into a
//! kubeconfig in the scenario's directory. The same path runs on the stand-in (which serves
//! TokenRequest and evaluates RBAC) and on a real cluster (`TODO_DEPLOY_E2E_KUBECONFIG`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

use super::Run;
use super::cluster::Env;

/// What an account may do.
pub enum Grant<'a> {
    /// A RoleBinding in the namespace to this ClusterRole (`edit`).
    ClusterRole(&'a str),
    /// These Role rules (JSON `PolicyRule`s), bound in the namespace.
    Rules(serde_json::Value),
    /// Nothing at all.
    Nothing,
}

/// A ServiceAccount's credentials, as a kubeconfig of the scenario's.
pub struct Account {
    pub name: String,
    pub kubeconfig: PathBuf,
}

impl Env {
    /// Makes the scenario's namespace (as admin, if missing), a ServiceAccount `name` in it with
    /// `grant`, and a kubeconfig that authenticates as it.
    pub async fn account(&self, name: &str, grant: Grant<'_>) -> Account {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if namespaces
            .get_opt(&self.namespace)
            .await
            .expect("read ns")
            .is_none()
        {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(self.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            namespaces
                .create(&PostParams::default(), &ns)
                .await
                .expect("create ns");
        }
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.namespace);
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        accounts
            .create(&PostParams::default(), &account)
            .await
            .expect("create the ServiceAccount");
        self.grant(name, grant).await;
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .expect("a TokenRequest")
            .status
            .expect("a token")
            .token;
        let kubeconfig = self.project.path().join(format!("kubeconfig-{name}"));
        write_kubeconfig(
            self.kubeconfig(),
            &kubeconfig,
            name,
            &token,
            &self.namespace,
        );
        Account {
            name: name.to_owned(),
            kubeconfig,
        }
    }

    /// Replaces what `name` may do with `grant` (its RoleBinding `name`, and Role `name`).
    pub async fn grant(&self, name: &str, grant: Grant<'_>) {
        let roles: Api<Role> = Api::namespaced(self.client.clone(), &self.namespace);
        let bindings: Api<RoleBinding> = Api::namespaced(self.client.clone(), &self.namespace);
        let _ = bindings.delete(name, &DeleteParams::default()).await;
        let _ = roles.delete(name, &DeleteParams::default()).await;
        let role_ref = match grant {
            Grant::Nothing => return,
            Grant::ClusterRole(role) => ("ClusterRole", role.to_owned()),
            Grant::Rules(rules) => {
                let role: Role = serde_json::from_value(json!({
                    "metadata": {"name": name}, "rules": rules
                }))
                .expect("a Role");
                let apply = PatchParams::apply("e2e").force();
                roles
                    .patch(name, &apply, &Patch::Apply(&role))
                    .await
                    .expect("the Role");
                ("Role", name.to_owned())
            }
        };
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: role_ref.0.to_owned(),
                name: role_ref.1,
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: name.to_owned(),
                namespace: Some(self.namespace.clone()),
                api_group: None,
            }]),
        };
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("the RoleBinding");
    }

    /// Runs `todo-deploy` as `account` (see [`Env::run`]).
    pub async fn run_as(&self, account: &Account, args: &[&str]) -> Run {
        let output = self
            .command_as(&account.kubeconfig, args)
            .output()
            .await
            .expect("todo-deploy runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The admin kubeconfig's current cluster with `token` as its only user; a CA file it names is
/// inlined, so the copy works from any directory.
fn write_kubeconfig(admin: &Path, to: &Path, user: &str, token: &str, namespace: &str) {
    use base64::Engine as _;
    let config = Kubeconfig::read_from(admin).expect("the scenario's kubeconfig");
    let current = config.current_context.clone().unwrap_or_default();
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == current)
        .or(config.contexts.first())
        .and_then(|c| c.context.clone())
        .expect("a context");
    let mut cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .cloned()
        .expect("the context's cluster");
    if let Some(info) = cluster.cluster.as_mut()
        && let Some(file) = info.certificate_authority.take()
    {
        let pem = std::fs::read(admin.parent().unwrap_or(Path::new(".")).join(file))
            .expect("the CA file");
        info.certificate_authority_data =
            Some(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    let auth_info = serde_json::from_value(json!({"token": token})).expect("a user");
    let written = Kubeconfig {
        clusters: vec![cluster],
        auth_infos: vec![kube::config::NamedAuthInfo {
            name: user.to_owned(),
            auth_info: Some(auth_info),
            ..Default::default()
        }],
        contexts: vec![kube::config::NamedContext {
            name: current.clone(),
            context: Some(kube::config::Context {
                cluster: context.cluster.clone(),
                user: Some(user.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(current),
        api_version: Some("v1".to_owned()),
        kind: Some("Config".to_owned()),
        ..Default::default()
    };
    let yaml = serde_saphyr::to_string(&written).expect("kubeconfig YAML");
    std::fs::write(to, yaml).expect("write the kubeconfig");
}
