//! The newer-server profile: aggregated discovery (`apidiscovery.k8s.io/v2`,
//! served from 1.30 on when a client asks for it), derived from the recorded
//! 1.24 resource lists. Kubernetes 1.24 ignores such `Accept` headers.

use serde_json::{Value, json};

use crate::resources;

/// The minor version of a "1.x" version string.
pub fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.trim_end_matches('+').parse().ok())
        .unwrap_or(24)
}

/// Whether the request asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.contains("g=apidiscovery.k8s.io") && accept.contains("as=APIGroupDiscoveryList")
}

/// The content type of an aggregated discovery response.
pub const CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn group_version_resources(list: Option<&Value>) -> Vec<Value> {
    let Some(rs) = list.and_then(|l| l["resources"].as_array()) else {
        return Vec::new();
    };
    let mut out: Vec<Value> = Vec::new();
    for r in rs {
        let name = r["name"].as_str().unwrap_or("");
        let response_kind = json!({"group": r.get("group").cloned().unwrap_or(json!("")), "version": r.get("version").cloned().unwrap_or(json!("")), "kind": r["kind"]});
        match name.split_once('/') {
            None => {
                let mut e = json!({
                    "resource": name,
                    "responseKind": response_kind,
                    "scope": if r["namespaced"] == true { "Namespaced" } else { "Cluster" },
                    "singularResource": r["kind"].as_str().unwrap_or("").to_lowercase(),
                    "verbs": r["verbs"],
                });
                for k in ["shortNames", "categories"] {
                    if let Some(v) = r.get(k) {
                        e[k] = v.clone();
                    }
                }
                out.push(e);
            }
            Some((parent, sub)) => {
                if let Some(p) = out.iter_mut().find(|e| e["resource"] == parent) {
                    let subs = p
                        .as_object_mut()
                        .map(|m| m.entry("subresources").or_insert(json!([])));
                    if let Some(Value::Array(a)) = subs {
                        a.push(json!({"subresource": sub, "responseKind": response_kind, "verbs": r["verbs"]}));
                    }
                }
            }
        }
    }
    out
}

/// The aggregated document for `/api` or `/apis`.
pub fn document(path: &str) -> Option<Value> {
    let d = resources::discovery();
    let items: Vec<Value> = match path {
        "/api" => vec![json!({
            "metadata": {"creationTimestamp": null},
            "versions": [{"version": "v1", "resources": group_version_resources(d.get("/api/v1")), "freshness": "Current"}]
        })],
        "/apis" => d["/apis"]["groups"]
            .as_array()?
            .iter()
            .map(|g| {
                let versions: Vec<Value> = g["versions"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .map(|v| {
                                let gv = v["groupVersion"].as_str().unwrap_or("");
                                json!({"version": v["version"], "resources": group_version_resources(d.get(format!("/apis/{gv}"))), "freshness": "Current"})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"metadata": {"name": g["name"], "creationTimestamp": null}, "versions": versions})
            })
            .collect(),
        _ => return None,
    };
    Some(
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_aggregated_documents() {
        let apis = document("/apis").expect("doc");
        let apps = apis["items"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["metadata"]["name"] == "apps"))
            .expect("apps");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["resource"] == "deployments"))
            .expect("deployments");
        assert_eq!(deploy["scope"], "Namespaced");
        assert!(
            deploy["subresources"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["subresource"] == "status"))
        );
        assert_eq!(minor("1.30"), 30);
        assert_eq!(minor("1.24"), 24);
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
    }
}
