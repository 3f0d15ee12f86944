//! POSIX path helpers shared by the agent and the modules, ports of Python's `os.path`.

/// `os.path.normpath` (POSIX, purely lexical): collapses `.`, `..` and repeated slashes; keeps
/// exactly two leading slashes, and `..` at the start of a relative path.
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        if part != ".." || (slashes == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(part);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let out = format!("{}{}", "/".repeat(slashes), parts.join("/"));
    if out.is_empty() {
        ".".to_string()
    } else {
        out
    }
}

/// `_common.expand_user_home`: `~` at the start of copy's and template's `dest` as their action
/// plugins expand it, from the passwd entry of the user the task runs as (not `$HOME`).
pub fn expand_user_home(path: &str) -> String {
    if path != "~" && !path.starts_with("~/") {
        return path.to_string();
    }
    match crate::sys::user_name(crate::sys::euid()).and_then(|name| crate::sys::user_home(&name)) {
        Some(home) => format!("{}{}", home, &path[1..]),
        None => path.to_string(),
    }
}

/// `os.path.expanduser`: `~` from `$HOME` (else the passwd entry), `~user` from passwd; an
/// unknown user leaves the path as it is.
pub fn expanduser(path: &str) -> String {
    if !path.starts_with('~') {
        return path.to_string();
    }
    let end = path[1..].find('/').map_or(path.len(), |i| i + 1);
    let home = if end == 1 {
        match std::env::var("HOME") {
            Ok(home) => Some(home),
            Err(_) => crate::sys::user_name(crate::sys::uid()).and_then(|name| crate::sys::user_home(&name)),
        }
    } else {
        crate::sys::user_home(&path[1..end])
    };
    match home {
        Some(home) => {
            let joined = format!("{}{}", home.trim_end_matches('/'), &path[end..]);
            if joined.is_empty() {
                "/".to_string()
            } else {
                joined
            }
        }
        None => path.to_string(),
    }
}
