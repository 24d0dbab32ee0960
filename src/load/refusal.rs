//! What a failed push means. The engine reports a registry's refusal as the registry's error
//! code (the Distribution spec's `UNAUTHORIZED`, `DENIED`, …, each tied to one HTTP status) or
//! as the HTTP status itself, and an unreachable registry as the dial error; this turns that
//! into the registry, the status and the fix.

use std::fmt;

/// Why `registry` did not take a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub registry: String,
    /// The HTTP status the registry answered with; `None` when it did not answer.
    pub status: Option<u16>,
    pub kind: Kind,
    /// The engine's message, as it said it.
    pub message: String,
    /// Whether a login was sent.
    pub logged_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 401: no login, or a wrong one.
    Unauthorized,
    /// 403: the login may not push here (or a quota is used up).
    Denied,
    /// 405: the registry takes no pushes (read-only, maintenance).
    ReadOnly,
    /// 429.
    TooManyRequests,
    /// No answer: refused, no route, no name, TLS.
    Unreachable,
    /// The registry speaks HTTP, the engine wanted HTTPS.
    PlainHttp,
    Other,
}

/// Distribution's error codes and their HTTP statuses (docs/spec/api.md, "Errors").
const CODES: [(&str, u16, Kind); 7] = [
    ("unauthorized:", 401, Kind::Unauthorized),
    ("denied:", 403, Kind::Denied),
    ("unsupported:", 405, Kind::ReadOnly),
    ("toomanyrequests:", 429, Kind::TooManyRequests),
    ("name_unknown:", 404, Kind::Other),
    ("blob_upload_unknown:", 404, Kind::Other),
    ("unknown:", 500, Kind::Other),
];

impl Refusal {
    pub fn of(registry: &str, message: &str, logged_in: bool) -> Refusal {
        let lower = message.to_ascii_lowercase();
        let (status, kind) = classify(&lower);
        Refusal {
            registry: registry.to_owned(),
            status,
            kind,
            message: message.trim().to_owned(),
            logged_in,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        let registry = &self.registry;
        let host = registry.split('/').next().unwrap_or(registry);
        match self.kind {
            Kind::Unauthorized if self.logged_in => format!(
                "the stored login for `{host}` is wrong or expired: `docker login {host}` again (todo-deploy reads `~/.docker/config.json`, `$DOCKER_CONFIG`, and its credential helpers)"
            ),
            Kind::Unauthorized => format!(
                "log in first: `docker login {host}` (todo-deploy reads `~/.docker/config.json`, `$DOCKER_CONFIG`, and its credential helpers)"
            ),
            Kind::Denied => format!(
                "the login for `{host}` may not push to `{registry}`: check its permissions or quota, or `docker login {host}` as a user who may"
            ),
            Kind::ReadOnly => format!(
                "`{host}` takes no pushes now (read-only or in maintenance): push to another registry (`cluster.registry`), or ask its operator"
            ),
            Kind::TooManyRequests => {
                format!("`{host}` limits requests: wait a little and run again")
            }
            Kind::Unreachable => format!(
                "is the registry running and reachable from the Docker engine at `{host}`? `docker push` shows the same; `docker login {host}` checks both"
            ),
            Kind::PlainHttp => format!(
                "`{host}` speaks plain HTTP: add it to `insecure-registries` in `/etc/docker/daemon.json` and restart Docker (registries on 127.0.0.0/8 are allowed already)"
            ),
            Kind::Other => format!(
                "`docker push` to `{host}` shows the same; `docker login {host}` checks the login"
            ),
        }
    }
}

fn classify(lower: &str) -> (Option<u16>, Kind) {
    if lower.contains("server gave http response to https client") {
        return (None, Kind::PlainHttp);
    }
    for (code, status, kind) in CODES {
        if lower.starts_with(code) || lower.contains(&format!(" {code}")) {
            return (Some(status), kind);
        }
    }
    if lower.contains("authentication required")
        || lower.contains("no basic auth credentials")
        || lower.contains("401 unauthorized")
    {
        return (Some(401), Kind::Unauthorized);
    }
    if let Some(status) = http_status(lower) {
        let kind = match status {
            401 => Kind::Unauthorized,
            403 => Kind::Denied,
            405 => Kind::ReadOnly,
            429 => Kind::TooManyRequests,
            _ => Kind::Other,
        };
        return (Some(status), kind);
    }
    let unreachable = [
        "connection refused",
        "no such host",
        "dial tcp",
        "i/o timeout",
        "no route to host",
        "x509:",
        "tls:",
    ];
    if unreachable.iter().any(|s| lower.contains(s)) {
        return (None, Kind::Unreachable);
    }
    (None, Kind::Other)
}

/// `… status: 503 Service Unavailable`, `… status code 500`, `… HTTP 405 response …`.
fn http_status(lower: &str) -> Option<u16> {
    let after = lower
        .split_once("status: ")
        .or_else(|| lower.split_once("status code "))
        .or_else(|| lower.split_once("http "))?
        .1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.kind) {
            (_, Kind::Unreachable) => write!(
                f,
                "the registry `{}` did not answer: {}",
                self.registry, self.message
            ),
            (Some(status), _) => write!(
                f,
                "the registry `{}` answered HTTP {status}: {}",
                self.registry, self.message
            ),
            (None, _) => write!(f, "the registry `{}`: {}", self.registry, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_messages_give_the_status() {
        let cases = [
            (
                "unauthorized: authentication required",
                Some(401),
                Kind::Unauthorized,
            ),
            (
                "denied: requested access to the resource is denied",
                Some(403),
                Kind::Denied,
            ),
            (
                "unsupported: The operation is unsupported.",
                Some(405),
                Kind::ReadOnly,
            ),
            (
                "toomanyrequests: slow down",
                Some(429),
                Kind::TooManyRequests,
            ),
            (
                "received unexpected HTTP status: 503 Service Unavailable",
                Some(503),
                Kind::Other,
            ),
            (
                "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused",
                None,
                Kind::Unreachable,
            ),
            (
                "error parsing HTTP 405 response body: invalid character 'M' looking for beginning of value: \"Method not allowed\\n\"",
                Some(405),
                Kind::ReadOnly,
            ),
            ("no basic auth credentials", Some(401), Kind::Unauthorized),
            (
                "Get \"https://r:5000/v2/\": http: server gave HTTP response to HTTPS client",
                None,
                Kind::PlainHttp,
            ),
        ];
        for (message, status, kind) in cases {
            let refusal = Refusal::of("r:5000/team", message, true);
            assert_eq!((refusal.status, refusal.kind), (status, kind), "{message}");
            assert!(refusal.to_string().contains("`r:5000/team`"), "{refusal}");
            assert!(refusal.hint().contains("r:5000"), "{}", refusal.hint());
        }
    }

    #[test]
    fn a_wrong_login_says_to_log_in_again() {
        let refusal = Refusal::of("r:5000", "unauthorized: authentication required", true);
        assert_eq!(
            refusal.to_string(),
            "the registry `r:5000` answered HTTP 401: unauthorized: authentication required"
        );
        assert!(refusal.hint().contains("`docker login r:5000` again"));
        let anonymous = Refusal::of("r:5000", "unauthorized: authentication required", false);
        assert!(
            anonymous
                .hint()
                .starts_with("log in first: `docker login r:5000`")
        );
    }
}
