//! The namespace controllers: each new namespace gets its `kube-root-ca.crt`
//! ConfigMap and `default` ServiceAccount; a terminating namespace has its
//! content deleted, then its `kubernetes` finalizer removed, then goes.

use serde_json::json;

use super::{Env, meta};
use crate::api::{DeleteOpts, Req};

/// Reconciles one namespace.
pub fn sync(env: &Env, name: &str) {
    let ns_res = env.res("Namespace");
    let Ok(ns) = env.api.get(ns_res, "", name) else {
        return;
    };
    let deleting = ns
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    if !deleting {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"},
            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBstandin\n-----END CERTIFICATE-----\n"}});
        let _ = env.api.create(
            env.res("ConfigMap"),
            name,
            cm,
            &Req::by("kube-controller-manager"),
        );
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
        let _ = env.api.create(
            env.res("ServiceAccount"),
            name,
            sa,
            &Req::by("kube-controller-manager"),
        );
        return;
    }
    let content: Vec<_> = env
        .api
        .snapshot()
        .into_iter()
        .filter(|(r, v)| r.namespaced && meta(v, "namespace") == name)
        .collect();
    if content.is_empty() {
        let _ = env.api.modify_raw(ns_res, "", name, |live| {
            let mut n = live.clone();
            n["spec"]["finalizers"] = json!([]);
            if let Some(m) = n["spec"].as_object_mut() {
                m.remove("finalizers");
            }
            Some(n)
        });
        // Removing the spec finalizer leaves a deleting object without finalizers: remove it.
        let _ = env.api.delete(ns_res, "", name, &DeleteOpts::default());
        return;
    }
    for (r, v) in content {
        if v.pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null())
        {
            continue;
        }
        let _ = env.api.delete(
            r,
            name,
            meta(&v, "name"),
            &DeleteOpts {
                propagation: Some("Background".into()),
                ..DeleteOpts::default()
            },
        );
    }
}
