//! Under `runAsNonRoot` the kubelet starts a container only when its user is numeric and not 0
//! (`USER 10001`; a name such as `app` cannot be verified and is refused): judged from the
//! built image's `Config.User`, or for an image not built yet from its Dockerfile's last `USER`
//! in the final stage. Pure.

/// Why a `USER` would be refused under `runAsNonRoot`, or `None` when it runs.
pub fn refused(user: &str) -> Option<String> {
    let uid = user.split(':').next().unwrap_or("").trim();
    match uid.parse::<u64>() {
        _ if uid.is_empty() => Some("has no `USER`, so it runs as root".to_owned()),
        Ok(0) => Some(format!("runs as root (`USER {user}`)")),
        Ok(_) => None,
        Err(_) => Some(format!(
            "runs as `{uid}`, a name the kubelet cannot verify as non-root"
        )),
    }
}

/// The user the final stage of `dockerfile` sets (`""` when none), as Docker reads it: the last
/// `USER` after the last `FROM`. A `USER` with a build variable is returned as written.
pub fn from_dockerfile(dockerfile: &str) -> String {
    let mut user = String::new();
    let mut joined = String::new();
    for raw in dockerfile.lines() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            continue;
        }
        joined.push_str(line);
        let instruction = std::mem::take(&mut joined);
        let mut words = instruction.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("FROM") => user.clear(),
            Some("USER") => user = words.collect::<Vec<_>>().join(" "),
            _ => {}
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_numeric_non_root_user_runs() {
        assert_eq!(refused("10001"), None);
        assert_eq!(refused("10001:10001"), None);
        assert!(refused("").unwrap().contains("root"));
        assert!(refused("0").unwrap().contains("root"));
        assert!(refused("app").unwrap().contains("`app`"));
    }

    #[test]
    fn the_last_user_of_the_final_stage_counts() {
        let file = "FROM node AS build\nUSER 1000\nRUN x \\\n  && y\nFROM scratch\n# USER 5\nCOPY . /\nuser app\nUSER 10001\n";
        assert_eq!(from_dockerfile(file), "10001");
        assert_eq!(from_dockerfile("FROM a\nUSER 1\nFROM b\n"), "");
    }
}
