//! `apt`, as the Python runtime's `modules/packages.py` does it for the options the compiler
//! lets through (`name`/`pkg`/`package` and a `state` of present, installed, absent or
//! removed): `dpkg-query` says what is installed, `apt-cache policy` whether a missing package
//! is available, check mode reports what would change without running `apt-get`, and otherwise
//! `apt-get -y -q install|remove` runs as the runtime runs it. The cache options, `latest`,
//! `purge`, `autoremove`, `deb`, `upgrade` and the other options are refused at compile time
//! (`compiler.native._APT`): those tasks stay with pyz.

use super::command::run_argv;
use super::files::{fail, fail_with, map, py_str, R};
use super::{Ctx, ModuleResult};
use crate::json::{Map, Value};

const DPKG_OPTIONS: &str = "force-confdef,force-confold";

/// `_names`: the packages named by `name`, `pkg` or `package` (a comma-separated text or a list).
fn names(args: &Map) -> Vec<String> {
    match super::files::pop_arg(args, &["name", "pkg", "package"]) {
        None => Vec::new(),
        Some(Value::Str(text)) => text.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
        Some(Value::List(items)) => items.iter().map(|n| py_str(n).trim().to_string()).filter(|n| !n.is_empty()).collect(),
        Some(other) => {
            let name = py_str(other).trim().to_string();
            if name.is_empty() {
                Vec::new()
            } else {
                vec![name]
            }
        }
    }
}

/// `_need`: the tool must be on the runner's PATH.
fn need(tool: &str, hint: &str) -> R<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    if path.split(':').any(|dir| super::files::isfile(&super::files::join(dir, tool)) && super::files::can_access(&super::files::join(dir, tool), 1)) {
        return Ok(());
    }
    fail(format!("Could not find {} on this host (PATH={}); hint: {}", tool, path, hint))
}

/// `ctx.run_command(argv, env=extra)`: the task's environment, then `extra`.
fn out(ctx: &Ctx, argv: &[&str], extra: &[(&str, &str)]) -> R<(i32, String, String)> {
    let mut env = ctx.environment.clone();
    for (k, v) in extra {
        env.insert(k, Value::from(*v));
    }
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    run_argv(&env, &argv).or_else(|e| match super::command::deadline_failure(&e) {
        Some(failure) => Err(failure),
        None => fail(format!("[Errno {}] {}: {}", e.raw_os_error().unwrap_or(0), crate::sys::strerror(&e), crate::json::py_repr_str(&argv[0]))),
    })
}

/// `_dpkg_installed`: (installed?, version) according to dpkg.
fn dpkg_installed(ctx: &Ctx, name: &str) -> R<(bool, String)> {
    let (rc, stdout, _) = out(ctx, &["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Version}\n", name], &[])?;
    if rc != 0 {
        return Ok((false, String::new()));
    }
    for line in crate::expr::py_splitlines_of(&stdout) {
        let (status, version) = line.split_once('\t').unwrap_or((line.as_str(), ""));
        if status.starts_with("ii") || status.starts_with("hi") {
            return Ok((true, version.to_string()));
        }
    }
    Ok((false, String::new()))
}

/// `_apt_policy`'s candidate version, None for none.
fn apt_candidate(ctx: &Ctx, name: &str) -> R<Option<String>> {
    let (rc, stdout, _) = out(ctx, &["apt-cache", "policy", name], &[])?;
    let mut candidate = None;
    if rc == 0 {
        for line in crate::expr::py_splitlines_of(&stdout) {
            let line = line.trim_matches(crate::expr::py_isspace);
            if let Some(rest) = line.strip_prefix("Candidate:") {
                candidate = Some(rest.trim_matches(crate::expr::py_isspace).to_string());
            }
        }
    }
    Ok(candidate.filter(|c| c != "(none)" && !c.is_empty()))
}

/// ansible.builtin.apt (the runtime's `packages.apt`), for names and present/absent.
pub fn apt(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    need("dpkg-query", "apt works only on Debian-family hosts; use the package module")?;
    let names = names(args);
    let state = args.get("state").map(py_str).unwrap_or_else(|| "present".to_string());
    let absent = match state.as_str() {
        "present" | "installed" => false,
        "absent" | "removed" => true,
        other => return fail(format!("apt: state={} is not supported by the native runner", other)),
    };
    let mut result = map(vec![("changed", Value::Bool(false))]);
    if names.is_empty() {
        return fail("one of the following is required: name, update_cache, upgrade, deb, autoremove, clean");
    }
    let mut todo = Vec::new();
    for spec in &names {
        let (name, version) = match spec.split_once('=') {
            Some((name, version)) => (name, Some(version)),
            None => (spec.as_str(), None),
        };
        let (installed, installed_version) = dpkg_installed(ctx, name)?;
        if !absent {
            if !installed || version.map_or(false, |v| !installed_version.starts_with(v)) {
                if apt_candidate(ctx, name)?.is_none() {
                    return fail(format!("No package matching '{}' is available", name));
                }
                todo.push(spec.clone());
            }
        } else if installed && version.map_or(true, |v| installed_version.starts_with(v)) {
            todo.push(name.to_string());
        }
    }
    if todo.is_empty() {
        return Ok(result);
    }
    result.insert("changed", Value::Bool(true));
    let verb = if absent { "remove" } else { "install" };
    if ctx.diff {
        result.insert("diff", Value::Dict(map(vec![("prepared", Value::Str(format!("{}: {}", verb, todo.join(" "))))])));
    }
    if ctx.check {
        result.insert("msg", Value::Str(format!("would {}: {}", verb, todo.join(", "))));
        return Ok(result);
    }
    need("apt-get", "install apt")?;
    let mut argv: Vec<String> = vec!["apt-get".into(), "-y".into(), "-q".into()];
    for opt in DPKG_OPTIONS.split(',') {
        argv.push("-o".into());
        argv.push(format!("Dpkg::Options::=--{}", opt.trim()));
    }
    argv.push(verb.into());
    argv.extend(todo.iter().cloned());
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (rc, stdout, stderr) = out(ctx, &words, &[("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_NONINTERACTIVE_SEEN", "true")])?;
    result.insert("stdout", Value::Str(stdout));
    result.insert("stderr", Value::Str(stderr.clone()));
    result.insert("rc", Value::Int(rc as i64));
    if rc != 0 {
        let msg = format!("'{}' failed: {}", argv.join(" "), stderr.trim_matches(crate::expr::py_isspace));
        return fail_with(msg, result.0.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    }
    Ok(result)
}
