//! `todo-deploy rbac`: the Role and RoleBinding a cluster admin grants so that a user or
//! ServiceAccount may run every command for the release in its namespace, and nothing more.
//! The rules come from [`access::for_every_command`], the list the preflight asks the cluster
//! about, so the grant and the check cannot drift. The Namespace must exist: a Role cannot
//! grant creating it.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::api::ObjectMeta;

use crate::access;
use crate::cli::{GlobalArgs, RbacArgs};
use crate::outcome::{Exit, Failure};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::Printer;

/// The ServiceAccount bound when none is named.
const DEFAULT_ACCOUNT: &str = "todo-deploy";

pub fn run(global: &GlobalArgs, args: &RbacArgs, printer: &Printer) -> Result<Exit, Failure> {
    let plan = settings::resolve(global, &CommandFlags::default(), Purpose::Inspect, &|_| {
        None
    })?;
    let yaml = manifests(&plan.namespace, &plan.release, args)?;
    printer.data(&yaml);
    Ok(Exit::Success)
}

/// The Role and its RoleBinding as two YAML documents, with a comment saying what they are.
pub fn manifests(namespace: &str, release: &str, args: &RbacArgs) -> Result<String, Failure> {
    let name = format!("todo-deploy-{release}");
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "todo-deploy".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), release.to_owned()),
    ]);
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels),
        ..Default::default()
    };
    let role = Role {
        metadata: metadata.clone(),
        rules: Some(access::role_rules(&access::for_every_command())),
    };
    let subject = match (&args.user, &args.service_account) {
        (Some(user), _) => Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "User".to_owned(),
            name: user.clone(),
            namespace: None,
        },
        (None, account) => Subject {
            api_group: None,
            kind: "ServiceAccount".to_owned(),
            name: account
                .clone()
                .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned()),
            namespace: Some(namespace.to_owned()),
        },
    };
    let binding = RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name,
        },
        subjects: Some(vec![subject]),
    };
    let typed = |value: serde_json::Value, api_version: &str, kind: &str| {
        let mut value = value;
        value["apiVersion"] = api_version.into();
        value["kind"] = kind.into();
        super::to_yaml(&value)
    };
    let to_value = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|error| Failure::new(Exit::Failed, error, None))
    };
    let api_version = "rbac.authorization.k8s.io/v1";
    let role = typed(to_value(serde_json::to_value(&role))?, api_version, "Role")?;
    let binding = typed(
        to_value(serde_json::to_value(&binding))?,
        api_version,
        "RoleBinding",
    )?;
    Ok(format!(
        "# What every todo-deploy command for release `{release}` needs in namespace `{namespace}`.\n\
         # The namespace must exist: a Role cannot grant creating it. Leases are not needed:\n\
         # the release lock falls back to a ConfigMap.\n---\n{role}---\n{binding}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_binding_for_a_service_account() {
        let args = RbacArgs {
            service_account: Some("ci".to_owned()),
            user: None,
        };
        let yaml = manifests("todo", "todo", &args).unwrap_or_default();
        assert!(yaml.contains("kind: Role\n"), "{yaml}");
        assert!(yaml.contains("kind: RoleBinding\n"), "{yaml}");
        assert!(yaml.contains("name: ci"), "{yaml}");
        assert!(yaml.contains("- deployments"), "{yaml}");
        assert!(!yaml.contains("leases"), "{yaml}");
        assert!(
            !yaml.contains("- namespaces\n    verbs:\n    - create"),
            "{yaml}"
        );
    }
}
