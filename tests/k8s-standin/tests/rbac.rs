//! Authentication and RBAC through the HTTP front, with kube-rs as the client: tokens, the 403
//! bodies as the API server words them, RoleBindings to the built-in `edit`, `resourceNames`,
//! the create check of an apply, SelfSubjectAccessReview and TokenRequest.

mod common;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_standin::StandIn;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

async fn client_with(s: &StandIn, token: &str) -> kube::Client {
    let yaml = s.kubeconfig_with_token("t", token);
    let config = Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn status_of(error: kube::Error) -> (u16, String, String) {
    match error {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("not an API error: {other}"),
    }
}

async fn bind(s: &StandIn, ns: &str, name: &str, role_ref: Value, subject: Value) {
    let (code, body) = common::call(
        s,
        "POST",
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        Some(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name}, "roleRef": role_ref, "subjects": [subject]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{body}");
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

async fn review(
    client: &kube::Client,
    ns: &str,
    verb: &str,
    group: &str,
    resource: &str,
) -> (bool, Option<String>) {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let asked = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_owned()),
                verb: Some(verb.to_owned()),
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create(&PostParams::default(), &asked)
        .await
        .expect("a review");
    let status = answer.status.expect("a status");
    (status.allowed, status.reason)
}

#[tokio::test]
async fn a_user_may_do_what_edit_in_a_namespace_allows_and_no_more() {
    let s = common::standin("team").await;
    s.add_user("t-alice", "alice");
    let alice = client_with(&s, "t-alice").await;

    let unknown = client_with(&s, "t-nobody").await;
    let pods: Api<Pod> = Api::namespaced(unknown, "team");
    assert_eq!(
        status_of(pods.list(&Default::default()).await.unwrap_err()).0,
        401
    );

    let pods: Api<Pod> = Api::namespaced(alice.clone(), "team");
    let (code, reason, message) = status_of(pods.list(&Default::default()).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"team\""
    );

    let edit =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"});
    bind(&s, "team", "alice-edit", edit, user("alice")).await;
    assert!(pods.list(&Default::default()).await.is_ok());
    let elsewhere: Api<Pod> = Api::namespaced(alice.clone(), "default");
    assert_eq!(
        status_of(elsewhere.list(&Default::default()).await.unwrap_err()).0,
        403
    );
    let namespaces: Api<Namespace> = Api::all(alice.clone());
    assert!(
        namespaces.get("team").await.is_ok(),
        "a namespace's own URL is in it"
    );
    let (code, _, message) = status_of(namespaces.get("default").await.unwrap_err());
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "namespaces \"default\" is forbidden: User \"alice\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"default\""
    );
    let ns =
        serde_json::from_value::<Namespace>(json!({"metadata": {"name": "mine"}})).expect("ns");
    let (code, _, message) = status_of(
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "namespaces is forbidden: User \"alice\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope"
    );

    let (allowed, reason) = review(&alice, "team", "create", "apps", "deployments").await;
    assert!(allowed);
    assert_eq!(
        reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"alice-edit/team\" of ClusterRole \"edit\" to User \"alice\""
        )
    );
    assert!(
        !review(&alice, "team", "get", "coordination.k8s.io", "leases")
            .await
            .0
    );
    assert!(!review(&alice, "team", "patch", "", "namespaces").await.0);
}

#[tokio::test]
async fn resource_names_and_the_create_an_apply_needs() {
    let s = common::standin("team").await;
    s.add_user("t-bob", "bob");
    let bob = client_with(&s, "t-bob").await;
    let (code, body) = common::call(
        &s,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles",
        Some(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "narrow"},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["only"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}
            ]})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let narrow = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"});
    bind(&s, "team", "bob-narrow", narrow, user("bob")).await;
    let maps: Api<ConfigMap> = Api::namespaced(bob.clone(), "team");
    assert_eq!(
        status_of(maps.get("only").await.unwrap_err()).0,
        404,
        "allowed, absent"
    );
    assert_eq!(status_of(maps.get("other").await.unwrap_err()).0, 403);
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "made"}})).expect("cm");
    let apply = PatchParams::apply("bob");
    let (code, reason, message) = status_of(
        maps.patch("made", &apply, &Patch::Apply(&map))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    // The patch handler's words: RBAC gives no reason for the create it refuses.
    assert_eq!(message, "configmaps \"made\" is forbidden: ");
    assert!(s.get("/api/v1/namespaces/team/configmaps/made").is_none());
}

#[tokio::test]
async fn a_token_request_authenticates_as_the_service_account() {
    let s = common::standin("team").await;
    let admin = client_with(&s, k8s_standin::authz::ADMIN_TOKEN).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin, "team");
    let request = serde_json::from_value(json!({"spec": {"audiences": []}})).expect("request");
    let token = accounts
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .expect("a token")
        .status
        .expect("a status")
        .token;
    let account = client_with(&s, &token).await;
    let pods: Api<Pod> = Api::namespaced(account, "team");
    let (_, _, message) = status_of(pods.list(&Default::default()).await.unwrap_err());
    assert!(
        message.contains("User \"system:serviceaccount:team:default\" cannot list"),
        "{message}"
    );
    let decisions = s.audit();
    let last = decisions.last().expect("a decision");
    assert_eq!(last.user, "system:serviceaccount:team:default");
    assert!(!last.allowed);
}
