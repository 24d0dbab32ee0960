//! The Ingress's own path rules, as the gateway applies them: the longest matching path wins;
//! `Prefix` matches whole path elements (`/api` matches `/api` and `/api/tasks`, not `/apix`),
//! `Exact` only itself, and `ImplementationSpecific` is read as a prefix (as ingress-nginx does
//! for a plain path). Pure.

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use crate::plan::IngressPlan;

/// Which Service port a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePort {
    Number(i32),
    Name(String),
}

/// One path rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path: String,
    pub exact: bool,
    pub service: String,
    pub port: ServicePort,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        if self.exact {
            return path == self.path;
        }
        let prefix = self.path.trim_end_matches('/');
        prefix.is_empty()
            || path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Every rule of an Ingress (for `host`, or for any host), most specific first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(pub Vec<Route>);

fn backend(backend: &IngressBackend) -> Option<(String, ServicePort)> {
    let service = backend.service.as_ref()?;
    let port = service.port.as_ref()?;
    let port = match (&port.number, &port.name) {
        (Some(number), _) => ServicePort::Number(*number),
        (None, Some(name)) => ServicePort::Name(name.clone()),
        (None, None) => return None,
    };
    Some((service.name.clone(), port))
}

impl Routes {
    /// The rules of a live Ingress.
    pub fn from_ingress(ingress: &Ingress) -> Routes {
        let Some(spec) = &ingress.spec else {
            return Routes::default();
        };
        let mut routes = Vec::new();
        for rule in spec.rules.iter().flatten() {
            for path in rule.http.iter().flat_map(|http| &http.paths) {
                if let Some((service, port)) = backend(&path.backend) {
                    routes.push(Route {
                        path: path.path.clone().unwrap_or_else(|| "/".to_owned()),
                        exact: path.path_type == "Exact",
                        service,
                        port,
                    });
                }
            }
        }
        if let Some((service, port)) = spec.default_backend.as_ref().and_then(backend) {
            routes.push(Route {
                path: "/".to_owned(),
                exact: false,
                service,
                port,
            });
        }
        Routes::sorted(routes)
    }

    /// The rules the configuration renders, for a release whose Ingress is not live.
    pub fn from_plan(ingress: &IngressPlan) -> Routes {
        let routes = ingress
            .paths
            .iter()
            .map(|route| Route {
                path: route.path.clone(),
                exact: false,
                service: route.service.clone(),
                port: ServicePort::Number(i32::from(route.port)),
            })
            .collect();
        Routes::sorted(routes)
    }

    fn sorted(mut routes: Vec<Route>) -> Routes {
        routes.sort_by(|a, b| b.exact.cmp(&a.exact).then(b.path.len().cmp(&a.path.len())));
        Routes(routes)
    }

    /// The rule for a request's path.
    pub fn pick(&self, path: &str) -> Option<&Route> {
        self.0.iter().find(|route| route.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress() -> Ingress {
        serde_json::from_value(serde_json::json!({
            "spec": {"rules": [{"host": "todo.local", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend", "port": {"number": 3000}}}},
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "backend", "port": {"name": "http"}}}},
                {"path": "/api/exact", "pathType": "Exact", "backend": {"service": {"name": "other", "port": {"number": 1}}}}
            ]}}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_longest_matching_path_wins_by_whole_elements() {
        let routes = Routes::from_ingress(&ingress());
        let service = |path: &str| routes.pick(path).map(|r| r.service.as_str());
        assert_eq!(service("/api/health"), Some("backend"));
        assert_eq!(service("/api"), Some("backend"));
        assert_eq!(service("/apix"), Some("frontend"));
        assert_eq!(service("/"), Some("frontend"));
        assert_eq!(service("/tasks/1"), Some("frontend"));
        assert_eq!(service("/api/exact"), Some("other"));
        assert_eq!(service("/api/exact/more"), Some("backend"));
        assert_eq!(
            routes.pick("/api").unwrap().port,
            ServicePort::Name("http".into())
        );
        assert_eq!(Routes::default().pick("/"), None);
    }
}
