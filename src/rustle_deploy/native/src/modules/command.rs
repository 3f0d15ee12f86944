//! `command` and `shell`, as the Python runtime's `modules/command.py` with the process
//! handling of `context.run_command` and `lowlevel.spawn`.
//!
//! The child runs in a new session (setsid) with SIGPIPE and SIGXFSZ at their defaults, the
//! runner's environment overlaid with the task's, stdin from `stdin` or /dev/null. `command`
//! splits its text like `shlex.split` and expands `$VAR` and `~` in each word; `shell` hands the
//! text to `/bin/sh -c` (or `executable`). The result fields (`rc`, `stdout`, `stderr`, `cmd`,
//! `start`, `end`, `delta`, `msg`) and messages are Python's.

use super::{Ctx, ModuleFailure, ModuleResult};
use crate::expr::py_isspace;
use crate::json::{py_repr, py_str, Map, Value};
use crate::paths::expanduser;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn command(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    run(ctx, args, false)
}

pub fn shell(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    run(ctx, args, true)
}

const INLINE_KEYS: [&str; 8] = [
    "chdir",
    "creates",
    "removes",
    "executable",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "warn",
];

fn map(pairs: Vec<(&str, Value)>) -> Map {
    let mut out = Map::new();
    for (k, v) in pairs {
        out.insert(k, v);
    }
    out
}

/// What Python's executor reports when a module raises an unexpected exception.
fn crash(kind: &str, msg: &str) -> ModuleResult {
    Ok(map(vec![
        ("failed", Value::Bool(true)),
        ("changed", Value::Bool(false)),
        (
            "msg",
            Value::Str(format!("Task failed: Module failed: {}", msg)),
        ),
        (
            "exception",
            Value::Str(format!(
                "Traceback (most recent call last):\n  (raised by the native runner)\n{}: {}\n",
                kind, msg
            )),
        ),
    ]))
}

fn bool_arg(value: Option<&Value>, default: bool) -> bool {
    match value {
        None | Some(Value::Null) => default,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            let text = py_str(other).trim_matches(py_isspace).to_lowercase();
            ["yes", "on", "1", "true", "y", "t"].contains(&text.as_str())
        }
    }
}

/// Python's `v not in (None, "", [])`.
fn given(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Str(s)) => !s.is_empty(),
        Some(Value::List(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

/// The command module's parameters (`_uses_shell` is the shell action's own).
const COMMAND_ARGS: [&str; 12] = [
    "_raw_params",
    "_uses_shell",
    "argv",
    "chdir",
    "cmd",
    "creates",
    "executable",
    "expand_argument_vars",
    "removes",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// Ansible's argument checks, in its words: the shell action refuses
/// `expand_argument_vars`, the module any parameter it does not have.
fn check_args(args: &Map, shell: bool) -> Result<(), ModuleFailure> {
    let name = if shell { "shell" } else { "command" };
    if shell && args.contains_key("expand_argument_vars") {
        return Err(ModuleFailure::new(
            "Unsupported parameters for (shell) module: expand_argument_vars",
        ));
    }
    let mut extra: Vec<&str> = args
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !COMMAND_ARGS.contains(k) && !k.starts_with('_'))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    let supported: Vec<&str> = COMMAND_ARGS
        .iter()
        .copied()
        .filter(|k| *k != "_uses_shell")
        .collect();
    Err(ModuleFailure::new(format!(
        "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
        name,
        extra.join(", "),
        supported.join(", ")
    )))
}

fn run(ctx: &mut Ctx, args: &Map, shell: bool) -> ModuleResult {
    let args = lift_inline(args);
    check_args(&args, shell)?;
    let (raw, cmd, argv) = (args.get("_raw_params"), args.get("cmd"), args.get("argv"));
    let count = [raw, cmd, argv].iter().filter(|v| given(**v)).count();
    if count == 0 {
        return Err(ModuleFailure::new(
            "one of the following is required: _raw_params, cmd, argv",
        ));
    }
    if count > 1 {
        return Err(ModuleFailure::new(
            "parameters are mutually exclusive: _raw_params|cmd|argv",
        ));
    }
    let present = |key: &str| args.get(key).filter(|v| !v.is_null());
    let (creates, removes) = (present("creates"), present("removes"));
    let mut executable = present("executable").map(py_str);
    let add_newline = bool_arg(args.get("stdin_add_newline"), true);
    let strip = bool_arg(args.get("strip_empty_ends"), true);
    let mut r = map(vec![
        ("changed", Value::Bool(false)),
        ("stdout", Value::from("")),
        ("stderr", Value::from("")),
        ("rc", Value::Null),
        ("cmd", Value::Null),
        ("start", Value::Null),
        ("end", Value::Null),
        ("delta", Value::Null),
        ("msg", Value::from("")),
    ]);
    if !shell {
        if let Some(exe) = executable.take().filter(|e| !e.is_empty()) {
            ctx.warnings.push(format!(
                "As of Ansible 2.4, the parameter 'executable' is no longer supported with the 'command' module. Not using '{}'.",
                exe
            ));
        }
    }
    let argv_words = match argv {
        Some(Value::List(items)) => Some(items.iter().map(py_str).collect::<Vec<String>>()),
        Some(Value::Null) | None => None,
        Some(_) => return Err(ModuleFailure::new("argv must be a list of strings")),
    };
    let text = match [raw, cmd].iter().flatten().find(|v| crate::expr::truthy(v)) {
        Some(Value::Str(text)) => Some(text.clone()),
        Some(other) => {
            return Err(ModuleFailure::new(format!(
                "the native runner needs the command as a string, got {}",
                py_repr(other)
            )))
        }
        None => None,
    };
    let words = argv_words.unwrap_or_default();
    let cmd_value = if shell {
        Value::Str(text.clone().unwrap_or_else(|| words.join(" ")))
    } else {
        let split = match &text {
            Some(text) => match shlex_split(text) {
                Ok(split) => split,
                Err(e) => return crash("ValueError", &e),
            },
            None => words,
        };
        Value::List(split.into_iter().map(Value::Str).collect())
    };
    r.insert("cmd", cmd_value.clone());
    let chdir = present("chdir")
        .filter(|v| crate::expr::truthy(v))
        .map(|v| expanduser(&py_str(v)));
    if let Some(dir) = &chdir {
        if !Path::new(dir).is_dir() {
            r.insert(
                "msg",
                Value::Str(format!(
                    "Unable to change directory before execution: {}",
                    dir
                )),
            );
            r.insert("failed", Value::Bool(true));
            r.insert("rc", Value::Int(2));
            return Ok(r);
        }
    }
    let base = match &chdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let shoulda = if ctx.check { "Would" } else { "Did" };
    let exists = |v: &Value| !glob(&path_join(&base, &expanduser(&py_str(v))), false).is_empty();
    if let Some(c) = creates.filter(|c| crate::expr::truthy(c) && exists(c)) {
        let c = py_str(c);
        r.insert(
            "msg",
            Value::Str(format!("{} not run command since '{}' exists", shoulda, c)),
        );
        r.insert("stdout", Value::Str(format!("skipped, since {} exists", c)));
        r.insert("rc", Value::Int(0));
        return Ok(r);
    }
    if let Some(rm) = removes.filter(|v| crate::expr::truthy(v) && !exists(v)) {
        let rm = py_str(rm);
        r.insert(
            "msg",
            Value::Str(format!(
                "{} not run command since '{}' does not exist",
                shoulda, rm
            )),
        );
        r.insert(
            "stdout",
            Value::Str(format!("skipped, since {} does not exist", rm)),
        );
        r.insert("rc", Value::Int(0));
        return Ok(r);
    }
    r.insert("changed", Value::Bool(true));
    if ctx.check {
        r.insert("rc", Value::Int(0));
        r.insert(
            "msg",
            Value::from("Command would have run if not in check mode"),
        );
        if creates.is_none() && removes.is_none() {
            r.insert("skipped", Value::Bool(true));
            r.insert("changed", Value::Bool(false));
        }
        return Ok(r);
    }
    let data = present("stdin").map(|v| {
        let mut text = py_str(v);
        if add_newline {
            text.push('\n');
        }
        text.into_bytes()
    });
    let env = child_env(ctx.environment);
    let argv = if shell {
        vec![
            executable.unwrap_or_else(|| "/bin/sh".to_string()),
            py_str(&cmd_value),
        ]
        .into_iter()
        .enumerate()
        .flat_map(|(i, a)| {
            if i == 1 {
                vec!["-c".to_string(), a]
            } else {
                vec![a]
            }
        })
        .collect()
    } else {
        // as the command module, whose environment holds the task's
        let words = cmd_value.as_list().cloned().unwrap_or_default();
        let expand = bool_arg(args.get("expand_argument_vars"), true);
        words
            .iter()
            .map(|w| {
                if expand {
                    expanduser(&expandvars(&py_str(w), &env))
                } else {
                    py_str(w)
                }
            })
            .collect::<Vec<String>>()
    };
    let start = LocalTime::now();
    let outcome = spawn(&argv, &env, chdir.as_deref(), data);
    let end = LocalTime::now();
    let (rc, stdout, stderr) = match outcome {
        Ok(done) => done,
        Err(e) => match deadline_failure(&e) {
            Some(failure) => return Err(failure),
            None => return spawn_failure(&e, &argv),
        },
    };
    let text = |bytes: &[u8]| {
        let s = String::from_utf8_lossy(bytes).into_owned();
        if strip {
            s.trim_end_matches(&['\r', '\n'][..]).to_string()
        } else {
            s
        }
    };
    r.insert("rc", Value::Int(rc as i64));
    r.insert("stdout", Value::Str(text(&stdout)));
    r.insert("stderr", Value::Str(text(&stderr)));
    r.insert("start", Value::Str(start.to_string()));
    r.insert("end", Value::Str(end.to_string()));
    r.insert(
        "delta",
        Value::Str(timedelta(end.naive_micros() - start.naive_micros())),
    );
    if rc != 0 {
        r.insert("msg", Value::from("non-zero return code"));
        r.insert("failed", Value::Bool(true));
    }
    Ok(r)
}

/// `_common.run_validate(ctx, validate, tmp, short)`: `validate % tmp` through `/bin/sh -c`
/// with the task's environment; a non-zero exit fails the module, as lineinfile's message
/// says it, or copy's (`short`). The compiler lowers only a `validate` whose `%` signs are
/// one `%s` and any `%%` (what Python's `%` accepts with one argument).
pub fn run_validate(environment: &Map, validate: &str, tmp: &str, short: bool) -> Result<(), ModuleFailure> {
    if !validate.contains("%s") {
        return Err(ModuleFailure::new(format!("validate must contain %s: {}", validate)));
    }
    let mut line = String::new();
    let mut rest = validate;
    while let Some(at) = rest.find('%') {
        line.push_str(&rest[..at]);
        match rest[at + 1..].chars().next() {
            Some('s') => line.push_str(tmp),
            Some('%') => line.push('%'),
            _ => return Err(ModuleFailure::new(format!("validate {}: a % other than %s or %%", py_repr(&Value::from(validate))))),
        }
        rest = &rest[at + 2..];
    }
    line.push_str(rest);
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), line];
    let (rc, stdout, stderr) = match spawn(&argv, &child_env(environment), None, None) {
        Ok(done) => done,
        Err(e) => match deadline_failure(&e) {
            Some(failure) => return Err(failure),
            None => return spawn_failure(&e, &argv).map(|_| ()),
        },
    };
    if rc == 0 {
        return Ok(());
    }
    let (out, err) = (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
    let msg = if short { "failed to validate".to_string() } else { format!("failed to validate: rc:{} error:{}", rc, err) };
    Err(ModuleFailure::with(
        msg,
        map(vec![("exit_status", Value::Int(rc as i64)), ("stdout", Value::Str(out)), ("stderr", Value::Str(err))]),
    ))
}

/// `argv` run with the task's environment, no stdin: (rc, stdout, stderr) as text, as
/// `AnsibleModule.run_command` gives them to a module.
pub fn run_argv(environment: &Map, argv: &[String]) -> io::Result<(i32, String, String)> {
    let (rc, stdout, stderr) = spawn(argv, &child_env(environment), None, None)?;
    Ok((rc, String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned()))
}

thread_local! {
    /// The running task's deadline and its `timeout` (seconds), for every process a module
    /// starts (`spawn`): the command, a `validate`, ssh-keygen. Set around one module call
    /// (`with_deadline`); the runner runs one task at a time.
    static DEADLINE: std::cell::Cell<Option<(std::time::Instant, f64)>> = std::cell::Cell::new(None);
}

/// Run `f` (a module) under the task's `timeout` (seconds; None or 0: none), as the Python
/// runtime's `ModuleContext.deadline`: a process still running at the deadline is killed with
/// its session, and the module fails with `timed_out`'s result.
pub fn with_deadline<T>(timeout: Option<f64>, f: impl FnOnce() -> T) -> T {
    let deadline = timeout.filter(|t| *t > 0.0).map(|t| (std::time::Instant::now() + std::time::Duration::from_secs_f64(t), t));
    let before = DEADLINE.with(|d| d.replace(deadline));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

/// The failure of a task whose `timeout` passed (`context.timed_out`), in ansible-core's words.
pub fn timed_out(timeout: f64) -> ModuleFailure {
    let period = if timeout.fract() == 0.0 && timeout.abs() < 1e15 { Value::Int(timeout as i64) } else { Value::Float(timeout) };
    let shown = crate::json::py_str(&period);
    let detail = map(vec![
        ("frame", Value::from("Configure `DISPLAY_TRACEBACK` to see a traceback on timeout errors.")),
        ("period", period),
    ]);
    ModuleFailure::with(format!("Task failed: Timed out after {} second(s).", shown), map(vec![("timedout", Value::Dict(detail))]))
}

/// A `spawn` error that is the task's deadline: its failure.
pub(crate) fn deadline_failure(e: &io::Error) -> Option<ModuleFailure> {
    if e.kind() != io::ErrorKind::TimedOut {
        return None;
    }
    DEADLINE.with(|d| d.get()).map(|(_, timeout)| timed_out(timeout))
}

/// `context.run_command`'s OSError: `[Errno N] text: 'argv0'` with rc, cmd, stdout, stderr.
fn spawn_failure(e: &io::Error, argv: &[String]) -> ModuleResult {
    let errno = match e.raw_os_error() {
        Some(errno) => errno,
        None => return crash("ValueError", &crate::sys::strerror(e)),
    };
    let msg = format!(
        "[Errno {}] {}: {}",
        errno,
        crate::sys::strerror(e),
        py_repr(&Value::from(argv[0].as_str()))
    );
    let cmd = Value::List(argv.iter().map(|a| Value::from(a.as_str())).collect());
    Err(ModuleFailure::with(
        msg,
        map(vec![
            ("rc", Value::Int(if errno == 0 { 2 } else { errno as i64 })),
            ("cmd", cmd),
            ("stdout", Value::from("")),
            ("stderr", Value::from("")),
        ]),
    ))
}

/// `os.environ` overlaid with the task's environment (values as `str()` gives them).
fn child_env(task_env: &Map) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    for (key, value) in task_env.iter() {
        let value = py_str(value);
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.clone(), value)),
        }
    }
    env
}

// ---------------------------------------------------------------------------------- inline

/// Ansible's `k=v` options lifted out of free-form text (`command._lift_inline`): each
/// `(^|\s)key=("…"|'…'|\S+)` is removed from `_raw_params`, its value set unless already given.
fn lift_inline(args: &Map) -> Map {
    let raw = match args.get("_raw_params") {
        Some(Value::Str(raw)) if raw.contains('=') => raw.clone(),
        _ => return args.clone(),
    };
    let mut out = args.clone();
    let chars: Vec<char> = raw.chars().collect();
    let mut kept = String::new();
    let mut pos = 0;
    while pos < chars.len() {
        match inline_match(&chars, pos) {
            Some((end, key, value)) => {
                if !out.contains_key(&key) {
                    out.insert(&key, Value::Str(value));
                }
                pos = end;
            }
            None => {
                kept.push(chars[pos]);
                pos += 1;
            }
        }
    }
    out.insert(
        "_raw_params",
        Value::Str(kept.trim_matches(py_isspace).to_string()),
    );
    out
}

/// A match of the inline-option pattern starting at `pos`: (end, key, unquoted value).
fn inline_match(chars: &[char], pos: usize) -> Option<(usize, String, String)> {
    let starts: Vec<usize> = if pos == 0 { vec![0, 1] } else { vec![pos + 1] };
    for start in starts {
        if start == pos + 1 && !py_isspace(chars[pos]) {
            continue;
        }
        for key in INLINE_KEYS.iter() {
            let k: Vec<char> = key.chars().collect();
            let eq = start + k.len();
            if chars.get(start..eq) != Some(&k[..]) || chars.get(eq) != Some(&'=') {
                continue;
            }
            if let Some(end) = inline_value_end(chars, eq + 1) {
                let value: String = chars[eq + 1..end].iter().collect();
                return Some((end, key.to_string(), unquote(&value)));
            }
        }
    }
    None
}

/// The end of `"(?:[^"\\]|\\.)*"|'[^']*'|\S+` at `start`, if it matches there.
fn inline_value_end(chars: &[char], start: usize) -> Option<usize> {
    match chars.get(start) {
        Some('"') => {
            let mut i = start + 1;
            while i < chars.len() {
                match chars[i] {
                    '"' => return Some(i + 1),
                    '\\' if i + 1 < chars.len() && chars[i + 1] != '\n' => i += 2,
                    '\\' => break,
                    _ => i += 1,
                }
            }
        }
        Some('\'') => {
            if let Some(close) = chars[start + 1..].iter().position(|c| *c == '\'') {
                return Some(start + 1 + close + 1);
            }
        }
        _ => {}
    }
    let len = chars[start.min(chars.len())..]
        .iter()
        .take_while(|c| !py_isspace(**c))
        .count();
    if len > 0 {
        Some(start + len)
    } else {
        None
    }
}

fn unquote(value: &str) -> String {
    let first = value.chars().next();
    if (first == Some('\'') || first == Some('"')) && value.chars().last() == first {
        let inner: Vec<char> = value.chars().collect();
        return inner[1..inner.len().saturating_sub(1).max(1)]
            .iter()
            .collect();
    }
    value.to_string()
}

// ----------------------------------------------------------------------------------- words

/// Python's `shlex.split(text)` (POSIX mode, no comments).
fn shlex_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next().ok_or("No escaped character")?);
                in_word = true;
            }
            '\'' => {
                loop {
                    match chars.next() {
                        None => return Err("No closing quotation".to_string()),
                        Some('\'') => break,
                        Some(q) => word.push(q),
                    }
                }
                in_word = true;
            }
            '"' => {
                loop {
                    match chars.next() {
                        None => return Err("No closing quotation".to_string()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err("No closing quotation".to_string()),
                            Some(e) if e == '"' || e == '\\' => word.push(e),
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                        },
                        Some(q) => word.push(q),
                    }
                }
                in_word = true;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Python's `os.path.expandvars` over `env` (the child's environment): `$name` and `${name}`.
fn expandvars(text: &str, env: &[(String, String)]) -> String {
    if !text.contains('$') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(close) => (&braced[..close], close + 2),
                None => ("", 0),
            }
        } else {
            let n = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&after[..n], n)
        };
        let value = env.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        match value.filter(|_| len > 0 && !name.is_empty()) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &rest[at + 1 + len..];
    }
    out.push_str(rest);
    out
}

/// Python's `os.path.join(base, path)`.
fn path_join(base: &str, path: &str) -> String {
    if path.starts_with('/') || base.is_empty() {
        path.to_string()
    } else if base.ends_with('/') {
        format!("{}{}", base, path)
    } else {
        format!("{}/{}", base, path)
    }
}

// ------------------------------------------------------------------------------------ glob

fn has_magic(s: &str) -> bool {
    s.contains(&['*', '?', '['][..])
}

/// Python's `os.path.split`.
fn split_path(p: &str) -> (String, String) {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    let (head, tail) = p.split_at(i);
    let head = if !head.is_empty() && !head.chars().all(|c| c == '/') {
        head.trim_end_matches('/')
    } else {
        head
    };
    (head.to_string(), tail.to_string())
}

fn lexists(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn is_dir(p: &str) -> bool {
    Path::new(if p.is_empty() { "." } else { p }).is_dir()
}

/// Python's `glob.glob(pattern)` (not recursive): the matching paths.
fn glob(pattern: &str, dironly: bool) -> Vec<String> {
    let (dirname, basename) = split_path(pattern);
    if !has_magic(pattern) {
        let found = if basename.is_empty() {
            is_dir(&dirname)
        } else {
            lexists(pattern)
        };
        return if found {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        };
    }
    let dirs = if !dirname.is_empty() && dirname != pattern && has_magic(&dirname) {
        glob(&dirname, true)
    } else {
        vec![dirname]
    };
    let mut out = Vec::new();
    for dir in dirs {
        let names = if has_magic(&basename) {
            list_matching(&dir, &basename, dironly)
        } else if basename.is_empty() {
            if is_dir(&dir) {
                vec![String::new()]
            } else {
                Vec::new()
            }
        } else if lexists(&path_join(&dir, &basename)) {
            vec![basename.clone()]
        } else {
            Vec::new()
        };
        out.extend(names.into_iter().map(|n| {
            if dir.is_empty() {
                n
            } else {
                path_join(&dir, &n)
            }
        }));
    }
    out
}

fn list_matching(dir: &str, pattern: &str, dironly: bool) -> Vec<String> {
    let entries = match std::fs::read_dir(if dir.is_empty() { "." } else { dir }) {
        Ok(entries) => entries,
        Err(_) => return Vec::new(),
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && pattern.first() != Some(&'.') {
            continue;
        }
        if dironly && !entry.path().is_dir() {
            continue;
        }
        let chars: Vec<char> = name.chars().collect();
        if fnmatch(&chars, &pattern) {
            names.push(name);
        }
    }
    names
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`.
fn fnmatch(name: &[char], pat: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| fnmatch(&name[i..], &pat[1..])),
        Some('?') => !name.is_empty() && fnmatch(&name[1..], &pat[1..]),
        Some('[') => match bracket(pat) {
            Some((matches, len)) => {
                !name.is_empty() && matches(name[0]) && fnmatch(&name[1..], &pat[len..])
            }
            None => name.first() == Some(&'[') && fnmatch(&name[1..], &pat[1..]),
        },
        Some(c) => name.first() == Some(c) && fnmatch(&name[1..], &pat[1..]),
    }
}

type CharTest = Box<dyn Fn(char) -> bool>;

/// A `[...]` set at the start of `pat`: its test and length, None when it is not closed.
fn bracket(pat: &[char]) -> Option<(CharTest, usize)> {
    let mut j = 1;
    let negate = pat.get(j) == Some(&'!');
    if negate {
        j += 1;
    }
    if pat.get(j) == Some(&']') {
        j += 1;
    }
    while j < pat.len() && pat[j] != ']' {
        j += 1;
    }
    if j >= pat.len() {
        return None;
    }
    let body: Vec<char> = pat[if negate { 2 } else { 1 }..j].to_vec();
    let test = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((Box::new(test), j + 1))
}

// ----------------------------------------------------------------------------------- spawn

/// Run `argv` in a new session; feed `data` on stdin (else /dev/null); return
/// (returncode, stdout, stderr), a signal as its negative number.
///
/// Reads until both pipes close or, as Ansible's run_command (and `lowlevel._communicate`),
/// until the child has exited and a second passes with nothing to read: a process it started
/// in the background may hold the pipes open. The reader threads of such pipes are left to
/// finish when that process closes them.
fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: Option<&str>,
    data: Option<Vec<u8>>,
) -> io::Result<(i32, Vec<u8>, Vec<u8>)> {
    use std::io::Read;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if data.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    crate::sys::new_session(&mut cmd);
    crate::sys::park_if_stopping();
    let mut child = cmd.spawn()?;
    let writer = match (child.stdin.take(), data) {
        (Some(mut stdin), Some(data)) => Some(std::thread::spawn(move || {
            // a child that exits without reading its stdin is not an error
            let _ = stdin.write_all(&data);
        })),
        _ => None,
    };
    let (tx, rx) = mpsc::channel::<(usize, Option<Vec<u8>>)>();
    let pipes: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("stdout is piped")),
        Box::new(child.stderr.take().expect("stderr is piped")),
    ];
    for (index, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send((index, None));
                        break;
                    }
                    Ok(n) => {
                        if tx.send((index, Some(buf[..n].to_vec()))).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let mut output = [Vec::new(), Vec::new()];
    let mut open = 2;
    let mut status = None;
    let deadline = DEADLINE.with(|d| d.get()).map(|(at, _)| at);
    while open > 0 {
        let mut wait = Duration::from_secs(1);
        if let Some(at) = deadline {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // the task's timeout: the child's session goes (it leads one: new_session)
                crate::sys::kill_group(child.id() as i32, 9);
                let _ = child.wait();
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the task's timeout passed"));
            }
            wait = wait.min(left);
        }
        match rx.recv_timeout(wait) {
            Ok((index, Some(chunk))) => output[index].extend_from_slice(&chunk),
            Ok((_, None)) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let stdin_done = writer.as_ref().map_or(true, |w| w.is_finished());
                if stdin_done {
                    if let Some(done) = child.try_wait()? {
                        status = Some(done);
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = match status {
        Some(status) => status,
        None => child.wait()?,
    };
    if let Some(writer) = writer.filter(|w| w.is_finished()) {
        let _ = writer.join();
    }
    let rc = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        (None, None) => -1,
    };
    let [stdout, stderr] = output;
    Ok((rc, stdout, stderr))
}

// ------------------------------------------------------------------------------------ time

/// A local wall-clock time with microseconds (Python's naive `datetime.now()`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct LocalTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
}

impl LocalTime {
    fn now() -> LocalTime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let micro = since.subsec_micros();
        match crate::sys::localtime(since.as_secs() as i64) {
            Some(tm) => LocalTime {
                year: tm.tm_year as i64 + 1900,
                month: tm.tm_mon as u32 + 1,
                day: tm.tm_mday as u32,
                hour: tm.tm_hour as u32,
                minute: tm.tm_min as u32,
                second: tm.tm_sec.min(59) as u32,
                micro,
            },
            // what the fields held before the call: the epoch
            None => LocalTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, micro },
        }
    }

    /// Microseconds since 1970-01-01 of this wall-clock time read as UTC (for differences of
    /// naive datetimes, as Python subtracts them).
    fn naive_micros(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64;
        secs * 1_000_000 + self.micro as i64
    }
}

impl std::fmt::Display for LocalTime {
    /// `str(datetime)`: "YYYY-MM-DD HH:MM:SS[.ffffff]".
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.micro != 0 {
            write!(f, ".{:06}", self.micro)?;
        }
        Ok(())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `str(timedelta(microseconds=micros))`: "[-]D day[s], H:MM:SS[.ffffff]".
fn timedelta(micros: i64) -> String {
    let day = 86_400_000_000;
    let days = micros.div_euclid(day);
    let rest = micros.rem_euclid(day);
    let (secs, micro) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = String::new();
    if days != 0 {
        out.push_str(&format!(
            "{} day{}, ",
            days,
            if days.abs() != 1 { "s" } else { "" }
        ));
    }
    out.push_str(&format!(
        "{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if micro != 0 {
        out.push_str(&format!(".{:06}", micro));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn temp_dir(name: &str) -> String {
        crate::test_dir("command", name).to_string_lossy().into_owned()
    }

    fn call(module: &str, check: bool, env: &str, args: &str) -> (ModuleResult, Vec<String>) {
        let env = parse(env).unwrap().as_dict().unwrap().clone();
        let files = Map::new();
        let mut ctx = Ctx {
            module,
            check,
            diff: false,
            environment: &env,
            files: &files,
            warnings: vec![],
        };
        let args = parse(args).unwrap().as_dict().unwrap().clone();
        let result = if module == "shell" {
            shell(&mut ctx, &args)
        } else {
            command(&mut ctx, &args)
        };
        (result, ctx.warnings)
    }

    fn ok(module: &str, args: &str) -> Map {
        call(module, false, "{}", args).0.unwrap()
    }

    fn field<'m>(m: &'m Map, key: &str) -> &'m Value {
        m.get(key).unwrap_or(&Value::Null)
    }

    #[test]
    fn shlex_split_like_python() {
        assert_eq!(
            shlex_split(r#"a 'b c' "d \" \n" e\ f"#).unwrap(),
            vec!["a", "b c", "d \" \\n", "e f"]
        );
        assert_eq!(shlex_split("x '' y\"z\"").unwrap(), vec!["x", "", "yz"]);
        assert_eq!(shlex_split("'open").unwrap_err(), "No closing quotation");
        assert_eq!(shlex_split("end\\").unwrap_err(), "No escaped character");
    }

    #[test]
    fn inline_options_are_lifted() {
        let args = parse(r#"{"_raw_params": "touch x creates=/tmp/a chdir=\"/my dir\" warn=false", "chdir": "/keep"}"#).unwrap();
        let out = lift_inline(args.as_dict().unwrap());
        assert_eq!(field(&out, "_raw_params"), &Value::from("touch x"));
        assert_eq!(field(&out, "creates"), &Value::from("/tmp/a"));
        assert_eq!(field(&out, "chdir"), &Value::from("/keep"));
        assert_eq!(field(&out, "warn"), &Value::from("false"));
        let args = parse(r#"{"_raw_params": "creates=a echo x=1 stdin_add_newline=no"}"#).unwrap();
        let out = lift_inline(args.as_dict().unwrap());
        assert_eq!(field(&out, "_raw_params"), &Value::from("echo x=1"));
        assert_eq!(field(&out, "stdin_add_newline"), &Value::from("no"));
    }

    #[test]
    fn runs_commands_and_reports_like_python() {
        let r = ok("command", r#"{"_raw_params": "printf 'a\\n\\n'"}"#);
        assert_eq!(field(&r, "stdout"), &Value::from("a"));
        assert_eq!(field(&r, "rc"), &Value::Int(0));
        assert_eq!(field(&r, "changed"), &Value::Bool(true));
        assert_eq!(
            field(&r, "cmd"),
            &parse(r#"["printf", "a\\n\\n"]"#).unwrap()
        );
        let keys: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["changed", "stdout", "stderr", "rc", "cmd", "start", "end", "delta", "msg"]
        );
        assert!(field(&r, "delta").as_str().unwrap().starts_with("0:00:0"));
        let r = ok(
            "shell",
            r#"{"cmd": "echo out; echo err >&2; exit 3", "strip_empty_ends": false}"#,
        );
        assert_eq!(field(&r, "stdout"), &Value::from("out\n"));
        assert_eq!(field(&r, "stderr"), &Value::from("err\n"));
        assert_eq!(field(&r, "rc"), &Value::Int(3));
        assert_eq!(field(&r, "msg"), &Value::from("non-zero return code"));
        assert_eq!(field(&r, "failed"), &Value::Bool(true));
        assert_eq!(
            field(&r, "cmd"),
            &Value::from("echo out; echo err >&2; exit 3")
        );
        let r = ok("shell", r#"{"_raw_params": "kill -9 $$"}"#);
        assert_eq!(field(&r, "rc"), &Value::Int(-9));
        let r = ok("command", r#"{"argv": ["cat"], "stdin": "in"}"#);
        assert_eq!(field(&r, "stdout"), &Value::from("in"));
        let r = ok(
            "shell",
            r#"{"_raw_params": "cat | od -c | head -1", "stdin": "x", "stdin_add_newline": false}"#,
        );
        assert!(!field(&r, "stdout").as_str().unwrap().contains("\\n"));
    }

    #[test]
    fn environment_session_and_chdir() {
        let dir = temp_dir("env");
        let args = format!(
            r#"{{"_raw_params": "echo $FOO $N; pwd; ps -o sid= -p $$", "chdir": "{}"}}"#,
            dir
        );
        let r = call("shell", false, r#"{"FOO": "bar", "N": 5}"#, &args)
            .0
            .unwrap();
        let out = field(&r, "stdout").as_str().unwrap().to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "bar 5");
        assert_eq!(
            std::fs::canonicalize(lines[1]).unwrap(),
            std::fs::canonicalize(&dir).unwrap()
        );
        if let Some(sid) = lines.get(2) {
            assert_ne!(
                sid.trim(),
                crate::sys::getpid().to_string(),
                "child has its own session"
            );
        }
        let r = ok(
            "command",
            &format!(r#"{{"cmd": "true", "chdir": "{}/missing"}}"#, dir),
        );
        assert_eq!(
            field(&r, "msg"),
            &Value::Str(format!(
                "Unable to change directory before execution: {}/missing",
                dir
            ))
        );
        assert_eq!(field(&r, "rc"), &Value::Int(2));
        std::env::set_var("RR_TEST_WORD", "expanded");
        let r = ok(
            "command",
            r#"{"argv": ["echo", "$RR_TEST_WORD", "${RR_NOPE}"]}"#,
        );
        assert_eq!(field(&r, "stdout"), &Value::from("expanded ${RR_NOPE}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn creates_removes_and_check_mode() {
        let dir = temp_dir("creates");
        std::fs::write(format!("{}/exists.txt", dir), "").unwrap();
        let args = format!(
            r#"{{"_raw_params": "touch new", "chdir": "{}", "creates": "*.txt"}}"#,
            dir
        );
        let r = call("command", false, "{}", &args).0.unwrap();
        assert_eq!(
            field(&r, "msg"),
            &Value::from("Did not run command since '*.txt' exists")
        );
        assert_eq!(
            field(&r, "stdout"),
            &Value::from("skipped, since *.txt exists")
        );
        assert_eq!(field(&r, "changed"), &Value::Bool(false));
        let args = format!(
            r#"{{"_raw_params": "touch new", "removes": "{}/nothing*"}}"#,
            dir
        );
        let r = call("command", true, "{}", &args).0.unwrap();
        assert_eq!(
            field(&r, "msg"),
            &Value::Str(format!(
                "Would not run command since '{}/nothing*' does not exist",
                dir
            ))
        );
        let r = call("command", true, "{}", r#"{"_raw_params": "touch x"}"#)
            .0
            .unwrap();
        assert_eq!(
            field(&r, "msg"),
            &Value::from("Command would have run if not in check mode")
        );
        assert_eq!(field(&r, "skipped"), &Value::Bool(true));
        assert_eq!(field(&r, "changed"), &Value::Bool(false));
        let args = format!(
            r#"{{"_raw_params": "touch x", "creates": "{}/absent"}}"#,
            dir
        );
        let r = call("command", true, "{}", &args).0.unwrap();
        assert_eq!(field(&r, "changed"), &Value::Bool(true));
        assert!(r.get("skipped").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn argument_errors() {
        let err = call("command", false, "{}", "{}").0.unwrap_err();
        assert_eq!(
            err.msg,
            "one of the following is required: _raw_params, cmd, argv"
        );
        let err = call("command", false, "{}", r#"{"cmd": "a", "argv": ["b"]}"#)
            .0
            .unwrap_err();
        assert_eq!(
            err.msg,
            "parameters are mutually exclusive: _raw_params|cmd|argv"
        );
        let err = call("command", false, "{}", r#"{"argv": "ls"}"#)
            .0
            .unwrap_err();
        assert_eq!(err.msg, "argv must be a list of strings");
        let err = call("command", false, "{}", r#"{"cmd": "rr-no-such-program x"}"#)
            .0
            .unwrap_err();
        assert_eq!(
            err.msg,
            "[Errno 2] No such file or directory: 'rr-no-such-program'"
        );
        assert_eq!(err.result.get("rc"), Some(&Value::Int(2)));
        let r = call("command", false, "{}", r#"{"cmd": "echo 'x"}"#)
            .0
            .unwrap();
        assert_eq!(
            field(&r, "msg"),
            &Value::from("Task failed: Module failed: No closing quotation")
        );
        let (r, warnings) = call(
            "command",
            false,
            "{}",
            r#"{"cmd": "true", "executable": "/bin/bash"}"#,
        );
        assert!(r.is_ok());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].ends_with("Not using '/bin/bash'."));
    }

    #[test]
    fn time_formats() {
        let t = LocalTime {
            year: 2024,
            month: 3,
            day: 1,
            hour: 4,
            minute: 5,
            second: 6,
            micro: 7,
        };
        assert_eq!(t.to_string(), "2024-03-01 04:05:06.000007");
        assert_eq!(
            LocalTime { micro: 0, ..t }.to_string(),
            "2024-03-01 04:05:06"
        );
        assert_eq!(timedelta(3_012), "0:00:00.003012");
        assert_eq!(timedelta(90_061_000_000), "1 day, 1:01:01");
        assert_eq!(timedelta(-1), "-1 day, 23:59:59.999999");
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }

    #[test]
    fn glob_and_paths() {
        let dir = temp_dir("glob");
        std::fs::create_dir_all(format!("{}/sub", dir)).unwrap();
        std::fs::write(format!("{}/sub/a.conf", dir), "").unwrap();
        std::fs::write(format!("{}/.hidden", dir), "").unwrap();
        assert_eq!(glob(&format!("{}/s*/[a-c].conf", dir), false).len(), 1);
        assert!(glob(&format!("{}/*hidden", dir), false).is_empty());
        assert_eq!(glob(&format!("{}/.h*", dir), false).len(), 1);
        assert!(glob(&format!("{}/sub/[!a].conf", dir), false).is_empty());
        assert_eq!(glob(&format!("{}/sub/", dir), false).len(), 1);
        assert_eq!(path_join("/a/", "b"), "/a/b");
        assert_eq!(path_join("/a", "/b"), "/b");
        assert_eq!(split_path("a/b//c"), ("a/b".to_string(), "c".to_string()));
        assert_eq!(expanduser("no~"), "no~");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
