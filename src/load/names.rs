//! How containerd spells a reference: the full name `docker pull` would resolve it to. Docker
//! shows the short form; comparing normalized names makes both agree.

/// `todo-backend:1` is `docker.io/library/todo-backend:1`, `me/app:1` is `docker.io/me/app:1`,
/// and a first part with a `.` or `:` (or `localhost`) is a registry and stays.
pub fn normalize(reference: &str) -> String {
    let (first, rest) = match reference.split_once('/') {
        Some(parts) => parts,
        None => return format!("docker.io/library/{reference}"),
    };
    if first == "docker.io" && !rest.contains('/') {
        format!("docker.io/library/{rest}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        reference.to_owned()
    } else {
        format!("docker.io/{reference}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalized_like_containerd_does() {
        assert_eq!(
            normalize("todo-backend:1"),
            "docker.io/library/todo-backend:1"
        );
        assert_eq!(normalize("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize("docker.io/app:1"), "docker.io/library/app:1");
        assert_eq!(
            normalize("docker.io/library/app:1"),
            "docker.io/library/app:1"
        );
        assert_eq!(normalize("localhost/app:1"), "localhost/app:1");
        assert_eq!(normalize("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(normalize("ghcr.io/me/app:1"), "ghcr.io/me/app:1");
        assert_eq!(
            normalize("todo-deploy-e2e/x-backend:v1"),
            "docker.io/todo-deploy-e2e/x-backend:v1"
        );
    }
}
