//! Module dispatch and the context a module function is given (the Python runtime's
//! `modules/__init__.py` and `context.ModuleContext`, for the modules the runner implements).
//!
//! A module is `fn(ctx, args) -> ModuleResult`: `args` are the task's rendered arguments, the
//! `Ok` map is Ansible's result dict, and `Err(ModuleFailure)` is Python's
//! `raise ModuleFailure(msg, **result)`; the executor turns it into
//! `{"changed": false, **result, "failed": true, "msg": msg}`.

pub mod command;
pub mod files;
pub mod known_hosts;
pub mod packages;
pub mod lines;
pub mod misc;
pub mod stat;
pub mod tempfile;

use crate::expr::Scope;
use crate::json::{Map, Value};

/// What a module may use of its task: modes, environment, embedded files, warnings.
pub struct Ctx<'a> {
    /// "copy", "template", ...
    pub module: &'a str,
    /// check mode for this task
    pub check: bool,
    /// diff wanted for this task
    pub diff: bool,
    /// the task's environment (values as given)
    pub environment: &'a Map,
    /// the artifact's "files" (sha256 -> base64)
    pub files: &'a Map,
    pub warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The bytes of the embedded file `sha`, checked against its name.
    pub fn file_bytes(&self, sha: &str) -> Result<Vec<u8>, String> {
        let text = self
            .files
            .get(sha)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("embedded file {} is missing from the artifact", sha))?;
        let data = crate::b64::decode(text).map_err(|e| {
            format!(
                "embedded file {} is corrupt ({}); hint: redeploy the artifact",
                sha, e
            )
        })?;
        if crate::sha::sha256_hex(&data) != sha {
            return Err(format!(
                "embedded file {} is corrupt (sha256 mismatch); hint: redeploy the artifact",
                sha
            ));
        }
        Ok(data)
    }
}

/// What `assert` and `debug` need beyond the context: the registered results, the run's -v.
pub struct Host<'a> {
    pub vars: &'a Scope<'a>,
    pub verbosity: i64,
}

/// Python's `ModuleFailure(msg, **result)`.
#[derive(Debug)]
pub struct ModuleFailure {
    pub msg: String,
    pub result: Map,
}

impl ModuleFailure {
    pub fn new(msg: impl Into<String>) -> Self {
        ModuleFailure {
            msg: msg.into(),
            result: Map::new(),
        }
    }

    pub fn with(msg: impl Into<String>, result: Map) -> Self {
        ModuleFailure {
            msg: msg.into(),
            result,
        }
    }
}

pub type ModuleResult = Result<Map, ModuleFailure>;

/// The modules the Python runtime wraps with `_common.module` (their failed results put
/// `changed` last); the others fail through `context.call_module` (`changed` first).
const WRAPPED: &[&str] = &["file", "copy", "template", "stat", "lineinfile", "blockinfile", "replace", "apt"];

/// Run module `name` and make its outcome Ansible's result dict: a failure becomes
/// `{"changed": false, **result, "failed": true, "msg": msg}`, warnings are added. `host` is
/// None in a become child, where `assert` and `debug` (controller-side) never run.
pub fn call(name: &str, ctx: &mut Ctx, args: &Map, host: Option<&Host>) -> Map {
    let mut result = match dispatch(name, ctx, args, host) {
        Ok(result) => result,
        // the task's timeout (command::with_deadline): context.timed_out's result, whatever the module
        Err(failure) if failure.result.contains_key("timedout") && failure.msg.starts_with("Task failed: Timed out after ") => {
            let mut result = Map::new();
            result.insert("failed", Value::Bool(true));
            result.insert("changed", Value::Bool(false));
            result.insert("msg", Value::Str(failure.msg));
            for (k, v) in failure.result.0 {
                result.insert(&k, v);
            }
            result
        }
        // an OS error the Python module does not catch: context.call_module's own result
        Err(failure) if WRAPPED.contains(&name) && failure.msg.starts_with("Task failed: Module failed: ") => {
            let mut result = Map::new();
            result.insert("failed", Value::Bool(true));
            result.insert("changed", Value::Bool(false));
            result.insert("msg", Value::Str(failure.msg));
            result
        }
        // `_common.module`'s failed result: the module's keys, failed, msg, then changed
        Err(failure) if WRAPPED.contains(&name) => {
            let mut result = failure.result;
            result.insert("failed", Value::Bool(true));
            result.insert("msg", Value::Str(failure.msg));
            if result.get("changed").is_none() {
                result.insert("changed", Value::Bool(false));
            }
            result
        }
        Err(failure) => {
            let mut result = Map::new();
            result.insert("changed", Value::Bool(false));
            for (k, v) in failure.result.0 {
                result.insert(&k, v);
            }
            result.insert("failed", Value::Bool(true));
            result.insert("msg", Value::Str(failure.msg));
            result
        }
    };
    if !ctx.warnings.is_empty() {
        let mut warnings = match result.get("warnings") {
            Some(Value::List(items)) => items.clone(),
            _ => Vec::new(),
        };
        warnings.extend(ctx.warnings.drain(..).map(Value::Str));
        result.insert("warnings", Value::List(warnings));
    }
    result
}

/// Run the module `name`.
pub fn dispatch(name: &str, ctx: &mut Ctx, args: &Map, host: Option<&Host>) -> ModuleResult {
    match name {
        "file" => files::file(ctx, args),
        "copy" => files::copy(ctx, args),
        "template" => files::template(ctx, args),
        "lineinfile" => lines::lineinfile(ctx, args),
        "blockinfile" => lines::blockinfile(ctx, args),
        "replace" => lines::replace(ctx, args),
        "stat" => stat::stat(ctx, args),
        "command" => command::command(ctx, args),
        "shell" => command::shell(ctx, args),
        "assert" | "debug" => match host {
            Some(host) if name == "assert" => misc::assert_(ctx, args, host),
            Some(host) => misc::debug(ctx, args, host),
            None => Err(ModuleFailure::new(format!("module {} runs in the runner's own process", name))),
        },
        "ping" => misc::ping(ctx, args),
        "fail" => misc::fail(args),
        "set_fact" => misc::set_fact(args),
        "tempfile" => tempfile::tempfile(ctx, args),
        "known_hosts" => known_hosts::known_hosts(ctx, args),
        "apt" => packages::apt(ctx, args),
        _ => Err(ModuleFailure::new(format!(
            "module {} is not supported by the native runner",
            name
        ))),
    }
}
