//! `apt`, as the Python runtime's `modules/packages.py` does it for the options the compiler
//! lets through (`compiler.native._SPEC["apt"]`: the names, a `state` of present, installed,
//! latest, absent or removed, `update_cache`/`cache_valid_time`, `purge`, `autoremove`, `clean`,
//! `install_recommends`, `default_release`, `allow_downgrade`, `only_upgrade`, `dpkg_options`):
//! `dpkg-query` says what is installed, `apt-cache policy` what is available, check mode
//! reports what would change without running `apt-get`, and otherwise `apt-get` runs as the
//! runtime runs it. `deb`, `upgrade` and the other options are refused at compile time: those
//! tasks stay with pyz.

use super::command::run_argv;
use super::files::{boolean, fail, fail_with, map, pop_arg, py_str, R};
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

/// `_apt_cache_time`: when the package lists were last updated (seconds since the epoch).
fn apt_cache_time() -> f64 {
    for path in &["/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists"] {
        if let Ok(meta) = std::fs::metadata(path) {
            return meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64());
        }
    }
    0.0
}

const APT_ENV: [(&str, &str); 2] = [("DEBIAN_FRONTEND", "noninteractive"), ("DEBCONF_NONINTERACTIVE_SEEN", "true")];

/// `c.boolean(args.get(name, False))`.
fn flag(args: &Map, name: &str) -> R<bool> {
    boolean(args.get(name).unwrap_or(&Value::Bool(false)), "value")
}

/// Python's `int(args.get("cache_valid_time") or 0)`.
fn valid_time(value: Option<&Value>) -> R<i64> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Bool(b)) => Ok(*b as i64),
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::Float(f)) => Ok(f.trunc() as i64),
        Some(Value::Str(text)) if text.is_empty() => Ok(0),
        Some(Value::Str(text)) => text.trim().replace('_', "").parse::<i64>().or_else(|_| {
            fail(format!("invalid literal for int() with base 10: {}", crate::json::py_repr_str(text)))
        }),
        Some(other) => fail(format!("int() argument must be a string, a bytes-like object or a real number, not '{}'",
                                    crate::json::type_name(other))),
    }
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

/// ansible.builtin.apt (the runtime's `packages.apt`) for the options the compiler lets through.
pub fn apt(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    need("dpkg-query", "apt works only on Debian-family hosts; use the package module")?;
    let names = names(args);
    let state = args.get("state").map(py_str).unwrap_or_else(|| "present".to_string());
    match state.as_str() {
        "present" | "installed" | "latest" | "absent" | "removed" => {}
        "build-dep" | "fixed" => return fail(format!("apt: state={} is not supported by this runtime", state)),
        other => return fail(format!("value of state must be one of: absent, build-dep, latest, present, fixed, got: {}", other)),
    }
    let absent = state == "absent" || state == "removed";
    let mut result = map(vec![("changed", Value::Bool(false))]);
    let update = boolean(pop_arg(args, &["update_cache", "update-cache"]).unwrap_or(&Value::Bool(false)), "value")?;
    let valid = valid_time(args.get("cache_valid_time"))?;
    if update || valid != 0 {
        let before = apt_cache_time();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let mut updated = false;
        if before + (valid as f64) < now || (update && valid == 0) {
            if !ctx.check {
                need("apt-get", "install apt")?;
                let (rc, stdout, stderr) = out(ctx, &["apt-get", "update", "-q"], &APT_ENV)?;
                if rc != 0 {
                    let why = if stderr.is_empty() { &stdout } else { &stderr };
                    return fail_with(format!("Failed to update apt cache: {}", why.trim_matches(crate::expr::py_isspace)),
                                     vec![("rc", Value::Int(rc as i64)), ("stdout", Value::Str(stdout.clone())), ("stderr", Value::Str(stderr.clone()))]);
                }
            }
            updated = ctx.check || apt_cache_time() != before;
        }
        result.insert("cache_updated", Value::Bool(updated));
        result.insert("cache_update_time", Value::Int(apt_cache_time().trunc() as i64));
        if names.is_empty() {
            result.insert("changed", Value::Bool(updated));
            return Ok(result);
        }
    }
    if names.is_empty() {
        if flag(args, "autoremove")? || flag(args, "clean")? {
            return housekeeping(ctx, args, result);
        }
        return fail("one of the following is required: name, update_cache, upgrade, deb, autoremove, clean");
    }
    let mut todo = Vec::new();
    for spec in &names {
        let (name, version) = match spec.split_once('=') {
            Some((name, version)) => (name, Some(version)),
            None => (spec.as_str(), None),
        };
        let (installed, installed_version) = dpkg_installed(ctx, name)?;
        if state == "latest" {
            if version.is_some() {
                return fail(format!("version number inconsistent with state=latest: {}", spec));
            }
            let candidate = apt_candidate(ctx, name)?;
            if candidate.is_none() && !installed {
                return fail(format!("No package matching '{}' is available", name));
            }
            if !installed || candidate.map_or(false, |c| c != installed_version) {
                todo.push(name.to_string());
            }
        } else if !absent {
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
    let mut argv = apt_get(args);
    if absent {
        argv.push("remove".into());
        if flag(args, "purge")? {
            argv.push("--purge".into());
        }
        if flag(args, "autoremove")? {
            argv.push("--auto-remove".into());
        }
    } else {
        match args.get("install_recommends") {
            Some(v) if !v.is_null() => argv.push(if boolean(v, "value")? { "--install-recommends" } else { "--no-install-recommends" }.into()),
            _ => {}
        }
        match args.get("default_release") {
            Some(v) if crate::json::truthy(v) => {
                argv.push("-t".into());
                argv.push(py_str(v));
            }
            _ => {}
        }
        if flag(args, "allow_downgrade")? {
            argv.push("--allow-downgrades".into());
        }
        if flag(args, "only_upgrade")? {
            argv.push("--only-upgrade".into());
        }
        argv.push("install".into());
    }
    argv.extend(todo.iter().cloned());
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (rc, stdout, stderr) = out(ctx, &words, &APT_ENV)?;
    result.insert("stdout", Value::Str(stdout));
    result.insert("stderr", Value::Str(stderr.clone()));
    result.insert("rc", Value::Int(rc as i64));
    if rc != 0 {
        let msg = format!("'{}' failed: {}", argv.join(" "), stderr.trim_matches(crate::expr::py_isspace));
        return fail_with(msg, result.0.iter().map(|(k, v)| (k.as_str(), v.clone())).collect());
    }
    Ok(result)
}

/// `apt-get -y -q` with the options every changing call takes, as the runtime's `_apt_get`
/// (ansible-core's apt): the dpkg options, and apt's own wait for a held dpkg lock (60 s,
/// ansible-core's `lock_timeout` default; a task that sets it runs under pyz).
fn apt_get(args: &Map) -> Vec<String> {
    let mut argv: Vec<String> = vec!["apt-get".into(), "-y".into(), "-q".into()];
    let options = match args.get("dpkg_options") {
        Some(v) if crate::json::truthy(v) => py_str(v),
        _ => DPKG_OPTIONS.to_string(),
    };
    for opt in options.split(',') {
        argv.push("-o".into());
        argv.push(format!("Dpkg::Options::=--{}", opt.trim_matches(crate::expr::py_isspace)));
    }
    argv.push("-o".into());
    argv.push("DPkg::Lock::Timeout=60".into());
    argv
}

/// `_apt_housekeeping`: `autoremove` (what `apt-get -s autoremove` would remove) and `clean`,
/// without names.
fn housekeeping(ctx: &mut Ctx, args: &Map, mut result: Map) -> ModuleResult {
    if flag(args, "autoremove")? {
        let (_, stdout, _) = out(ctx, &["apt-get", "-s", "autoremove"], &APT_ENV)?;
        if !crate::expr::py_splitlines_of(&stdout).iter().any(|line| line.starts_with("Remv ")) {
            return Ok(result);
        }
        result.insert("changed", Value::Bool(true));
        if !ctx.check {
            let mut argv = apt_get(args);
            if flag(args, "purge")? {
                argv.push("--purge".into());
            }
            argv.push("autoremove".into());
            let words: Vec<&str> = argv.iter().map(String::as_str).collect();
            let (rc, stdout, stderr) = out(ctx, &words, &APT_ENV)?;
            if rc != 0 {
                return fail_with(format!("'apt-get autoremove' failed: {}", stderr),
                                 vec![("rc", Value::Int(rc as i64)), ("stdout", Value::Str(stdout)), ("stderr", Value::Str(stderr))]);
            }
        }
    }
    if flag(args, "clean")? && !ctx.check {
        let (rc, stdout, stderr) = out(ctx, &["apt-get", "clean"], &APT_ENV)?;
        if rc != 0 {
            return fail_with(format!("apt-get clean failed: {}", stderr), vec![("rc", Value::Int(rc as i64)), ("stdout", Value::Str(stdout))]);
        }
    }
    Ok(result)
}
