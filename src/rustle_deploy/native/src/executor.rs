//! Apply a native artifact's program to one host: plays -> tasks -> handlers, with the Python
//! runtime's semantics (`executor.py`).
//!
//! Owns what remains of the task keywords once the compiler has rendered everything known at
//! compile time: `when`, loops (items already rendered), `register`, `changed_when`,
//! `failed_when`, `ignore_errors`, `no_log`, `check_mode`, `diff`, `environment`, `tags`,
//! `notify`/`listen`; the events, the recap and the run's exit code. Modules live in
//! `modules/`, the event format in `events.rs`, conditions in `expr.rs`.

use crate::become_as::{self, Children};
use crate::events::{censor, Emitter};
use crate::expr::{self, truthy, Scope};
use crate::facts;
use crate::json::{self, Map, Value};
use crate::modules::{self, Ctx, Host};
use crate::payload::{Artifact, RunOptions};
use crate::python_side::PythonSide;
use std::cell::RefCell;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const OMIT: &str = "__omit_place_holder__rustle";
const EXIT_OK: i32 = 0;
const EXIT_FAILED: i32 = 2;
const EXIT_USAGE: i32 = 3;

/// Result keys that are bookkeeping, not shown in events.
const HIDDEN: [&str; 7] = [
    "ansible_facts",
    "stdout_lines",
    "stderr_lines",
    "_meta",
    "_set_fact",
    "_ansible_verbose_always",
    "invocation",
];

/// Run the artifact at `path` for `host`; returns the exit code (0 ok, 2 a task failed,
/// 3 unreadable artifact, unknown host or unwritable journal).
pub fn run_artifact(path: &Path, host: &str, opts: &RunOptions) -> i32 {
    let artifact = match Artifact::load(path) {
        Ok(artifact) => artifact,
        Err(e) => {
            let hint = "it was changed after it was built, or is incomplete: build it again, or deploy it again \
                        (a deployment replaces a copy that changed on a host)";
            return usage_error(&format!("{}; refusing to run it", e), hint);
        }
    };
    let (plays, wants_facts, python_entry, discovery) = match artifact.host(host) {
        Some(entry) => (
            entry
                .get("plays")
                .and_then(Value::as_list)
                .cloned()
                .unwrap_or_default(),
            entry.get("facts").map_or(false, truthy),
            entry.get("python").and_then(Value::as_dict).cloned(),
            entry.get("discovery").and_then(Value::as_dict).cloned(),
        ),
        None => {
            let names = artifact.host_names();
            let served = if names.is_empty() {
                "no hosts".to_string()
            } else {
                names.join(", ")
            };
            return usage_error(
                &format!("unknown host '{}'", host),
                &format!("this artifact serves: {}", served),
            );
        }
    };
    let mut emitter = match Emitter::new(opts.journal.as_deref()) {
        Ok(emitter) => emitter,
        Err(e) => {
            let journal = opts
                .journal
                .as_deref()
                .unwrap_or_else(|| Path::new(""))
                .display();
            let msg = format!(
                "{}: cannot open the journal: {}",
                journal,
                crate::sys::strerror(&e)
            );
            return usage_error(&msg, "pass a writable --journal path");
        }
    };
    let check = opts.check || artifact.check_mode();
    let diff = opts.diff || artifact.diff_mode();
    let mut runner = Runner {
        host,
        opts,
        files: artifact.files(),
        check,
        diff,
        emitter: &mut emitter,
        base: base_layer(opts, check, diff, wants_facts),
        registered: Map::new(),
        stats: [0; 6],
        rescuing: 0,
        failure: None,
        ran: 0,
        roles_done: Vec::new(),
        includes_ran: Vec::new(),
        notified: Vec::new(),
        children: RefCell::new(Children::default()),
        python_entry,
        python: PythonSide::default(),
        discovery,
    };
    if wants_facts {
        // gathering is what runs Python first on an Ansible host (its setup module): the fact
        // comes with the facts, no result reports it (runtime executor.facts)
        if let Some(path) = runner.discovered_python() {
            if let Some(Value::Dict(facts)) = runner.base.get_mut("ansible_facts") {
                facts.insert("discovered_interpreter_python", Value::from(path.as_str()));
            }
        }
    }
    runner.run(artifact.binary_name(), &plays)
}

/// ansible-core's interpreter discovery, as the pyz launcher does it (transport/options.py
/// `remote_command`): the first of `fallback` that `command -v` finds as an absolute path and
/// that starts as a Python >= 3.8 (a pyenv shim without that version exits 127: passed over).
/// None when no candidate does.
fn discover_python(fallback: &[Value]) -> Option<String> {
    let names: Vec<String> = fallback.iter().map(json::py_str).collect();
    let script = "for P in \"$@\"; do P=$(command -v \"$P\" 2>/dev/null) || continue; \
                  case \"$P\" in /*) ;; *) continue;; esac; \
                  \"$P\" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 8))' </dev/null >/dev/null 2>&1 \
                  && { printf '%s' \"$P\"; exit 0; }; done; exit 1";
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(&names)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() && path.starts_with('/') {
        Some(path)
    } else {
        None
    }
}

/// The names every condition and templated argument sees below the registered results: the
/// run's options (`executor.Runner.__init__`) and, when the program asks for them, the host's
/// facts, prefixed and as `ansible_facts` (gathered once, here).
fn base_layer(opts: &RunOptions, check: bool, diff: bool, wants_facts: bool) -> Map {
    let mut base = Map::new();
    if wants_facts {
        let gathered = facts::gather();
        base.insert("ansible_facts", Value::Dict(facts::unprefixed(&gathered)));
        for (k, v) in gathered.0 {
            base.insert(&k, v);
        }
    }
    let strings =
        |items: &[String]| Value::List(items.iter().map(|t| Value::from(t.as_str())).collect());
    let run_tags = if opts.tags.is_empty() {
        Value::List(vec![Value::from("all")])
    } else {
        strings(&opts.tags)
    };
    base.insert("ansible_check_mode", Value::Bool(check));
    base.insert("ansible_diff_mode", Value::Bool(diff));
    base.insert("ansible_verbosity", Value::Int(opts.verbosity));
    base.insert("ansible_run_tags", run_tags);
    base.insert("ansible_skip_tags", strings(&opts.skip_tags));
    base
}

fn usage_error(msg: &str, hint: &str) -> i32 {
    eprintln!("rustle-runner: error: {}\nhint: {}", msg, hint);
    EXIT_USAGE
}

/// Ansible's tag selection (`always`, `never`, `all`, `tagged`, `untagged`).
pub fn tags_selected(task_tags: &[String], only: &[String], skip: &[String]) -> bool {
    let untagged = vec!["untagged".to_string()];
    let all = vec!["all".to_string()];
    let tags = if task_tags.is_empty() {
        &untagged
    } else {
        task_tags
    };
    let only = if only.is_empty() { &all } else { only };
    let has = |set: &[String], t: &str| set.iter().any(|x| x == t);
    let meets = |a: &[String], b: &[String]| a.iter().any(|x| has(b, x));
    let is_untagged = tags.iter().all(|t| t == "untagged");
    let run = has(tags, "always")
        || (has(only, "all") && !has(tags, "never"))
        || meets(tags, only)
        || (has(only, "tagged") && !is_untagged && !has(tags, "never"));
    if !run || skip.is_empty() {
        return run;
    }
    if has(skip, "all") {
        has(tags, "always") && !has(skip, "always")
    } else {
        !(meets(tags, skip) || (has(skip, "tagged") && !is_untagged))
    }
}

/// `failed`, `skipped`, `changed` or `ok`, in that order of precedence.
fn status(result: &Map) -> &'static str {
    let flag = |k: &str| result.get(k).map_or(false, truthy);
    if flag("failed") {
        "failed"
    } else if flag("skipped") {
        "skipped"
    } else if flag("changed") {
        "changed"
    } else {
        "ok"
    }
}

fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    }
}

/// Arguments without the `omit` placeholder (`executor._strip_omit`).
fn strip_omit(value: &Value) -> Value {
    let omitted = |v: &Value| v.as_str() == Some(OMIT);
    match value {
        Value::Dict(map) => Value::Dict(Map(map
            .iter()
            .filter(|(_, v)| !omitted(v))
            .map(|(k, v)| (k.clone(), strip_omit(v)))
            .collect())),
        Value::List(items) => Value::List(
            items
                .iter()
                .filter(|v| !omitted(v))
                .map(strip_omit)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An argument whose text is rendered at run time: literal parts and expressions' `str()`.
const TEMPLATE_KEY: &str = "__rustle_template__";
/// An argument that is one expression's value, of its own type.
const EXPR_KEY: &str = "__rustle_expr__";

/// `value` with every templated value in it rendered (docs/native.md): a dict whose only key is
/// TEMPLATE_KEY or EXPR_KEY, at any depth of dicts and lists. Errors are the expression's
/// (`'x' is undefined`); the caller words them as `executor._invoke` does.
pub fn render(value: &Value, scope: &Scope) -> Result<Value, String> {
    match value {
        Value::Dict(map) => {
            if map.len() == 1 {
                if let Some(parts) = map.get(TEMPLATE_KEY) {
                    return render_text(parts, scope).map(Value::Str);
                }
                if let Some(cond) = map.get(EXPR_KEY) {
                    // "{{ x }}\n": x's value; text gets the newline Jinja2 dropped back
                    return match expression(cond, scope)? {
                        Value::Str(mut text) if cond.get("newline").map_or(false, truthy) && !text.ends_with('\n') => {
                            text.push('\n');
                            Ok(Value::Str(text))
                        }
                        other => Ok(other),
                    };
                }
            }
            let mut out = Map::new();
            for (k, v) in map.iter() {
                out.insert(k, render(v, scope)?);
            }
            Ok(Value::Dict(out))
        }
        Value::List(items) => items
            .iter()
            .map(|v| render(v, scope))
            .collect::<Result<Vec<Value>, String>>()
            .map(Value::List),
        other => Ok(other.clone()),
    }
}

/// The value of `{"expr": "source", "ir": NODE}`; undefined is an error.
fn expression(cond: &Value, scope: &Scope) -> Result<Value, String> {
    match cond.get("ir") {
        Some(node) => expr::evaluate(node, scope),
        None => Err(format!(
            "malformed templated argument {}",
            crate::json::to_string(cond)
        )),
    }
}

fn render_text(parts: &Value, scope: &Scope) -> Result<String, String> {
    let parts = parts.as_list().ok_or_else(|| {
        format!(
            "malformed templated argument {}",
            crate::json::to_string(parts)
        )
    })?;
    let mut text = String::new();
    for part in parts {
        match part {
            Value::Str(literal) => text.push_str(literal),
            // ansible-core 2.19 writes nothing for a None-valued node (`a{{ none }}b` is "ab")
            other => match expression(other, scope)? {
                Value::Null => {}
                value => text.push_str(&json::py_str(&value)),
            },
        }
    }
    Ok(text)
}

/// Python's `str.splitlines()`.
fn splitlines(text: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}'
            | '\u{2028}' | '\u{2029}' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(Value::Str(std::mem::take(&mut line)));
            }
            c => line.push(c),
        }
    }
    if !line.is_empty() {
        lines.push(Value::Str(line));
    }
    lines
}

fn round6(seconds: f64) -> Value {
    Value::Float((seconds * 1e6).round() / 1e6)
}

fn map(pairs: Vec<(&str, Value)>) -> Map {
    let mut out = Map::new();
    for (k, v) in pairs {
        out.insert(k, v);
    }
    out
}

/// ansible-core 2.19's words for a task argument that cannot be rendered, naming the first
/// argument that fails (rendered again one by one, on this error path only).
fn args_error(module: &str, args: Option<&Value>, scope: &Scope, error: &str) -> String {
    let fqcn = if module.contains('.') {
        module.to_string()
    } else {
        format!("ansible.builtin.{}", module)
    };
    let head = format!("Task failed: Finalization of task args for '{}' failed: ", fqcn);
    if let Some(Value::Dict(args)) = args {
        for (key, value) in args.iter() {
            if let Err(e) = render(value, scope) {
                return format!("{}Error while resolving value for '{}': {}", head, key, e);
            }
        }
    }
    format!("{}{}", head, error)
}

/// What ansible-core 2.19 shows of a failed result's error summary (its `exception`) unless
/// tracebacks are enabled on the controller (`executor.TRACEBACK_UNAVAILABLE`).
const TRACEBACK_UNAVAILABLE: &str = "(traceback unavailable)";

/// `result` as ansible-core 2.19 registers it: a failed one carries `exception`
/// (`executor._with_exception`); the loop's own summary result does not.
fn with_exception(mut result: Map) -> Map {
    let failed = result.get("failed").map_or(false, truthy);
    let given = result.get("exception").map_or(false, truthy);
    if failed || given {
        result.insert("exception", Value::from(TRACEBACK_UNAVAILABLE));
    } else {
        result.remove("exception");
    }
    result
}

fn failure(msg: String) -> Map {
    map(vec![
        ("failed", Value::Bool(true)),
        ("changed", Value::Bool(false)),
        ("msg", Value::Str(msg)),
    ])
}

/// The index of the section an include's `choose` picks (`executor._choose`): its `name`
/// rendered here and looked up in `select`, or with `first_found`, the first of the rendered
/// candidates the controller found (`found`: name -> the controller's path, which `select`
/// knows). Errors are the runtime's words.
fn choose(choice: &Map, scope: &Scope) -> Result<usize, String> {
    let name = match choice.get("first_found") {
        Some(terms) if !terms.is_null() => {
            let found = choice.get("found").and_then(Value::as_dict);
            let rendered = render(terms, scope)?;
            let mut names = Vec::new();
            for term in as_list(Some(&rendered)) {
                if let Value::Str(text) = term {
                    names.extend(text.split(|c| c == ',' || c == ';').filter(|n| !n.is_empty()).map(str::to_string));
                }
            }
            match names.iter().find_map(|n| found.and_then(|f| f.get(n))) {
                Some(path) => json::py_str(path),
                None => return Err(choice.get("none_found").map(json::py_str).unwrap_or_default()),
            }
        }
        _ => match render(choice.get("name").unwrap_or(&Value::Null), scope)? {
            Value::Str(text) => text,
            other => json::py_str(&other),
        },
    };
    match choice.get("select").and_then(|s| s.get(&name)) {
        Some(Value::Int(index)) if *index >= 0 => Ok(*index as usize),
        Some(Value::Str(refused)) => Err(refused.clone()),
        _ => Err(format!("Could not find or access '{}' on the Ansible Controller.", name)),
    }
}

/// A task failed and was not ignored: the host stops.
struct HostFailed;

const STATS: [&str; 6] = ["ok", "changed", "failed", "skipped", "rescued", "ignored"];

struct Runner<'a> {
    host: &'a str,
    opts: &'a RunOptions,
    files: &'a Map,
    check: bool,
    diff: bool,
    emitter: &'a mut Emitter,
    /// run options and facts, below the registered results
    base: Map,
    /// registered results, across plays
    registered: Map,
    /// counts in the order of STATS
    stats: [i64; 6],
    /// how many enclosing block sections have a rescue
    rescuing: usize,
    /// the last task that failed the host, and its result (a rescue's `ansible_failed_*`)
    failure: Option<(Map, Map)>,
    /// tasks that ran (not skipped), and the roles a repeated role's `role_once` saw run
    ran: usize,
    roles_done: Vec<Value>,
    /// the ids of the includes that ran: an include_role's handlers (`included_by`) answer a
    /// notify only once one of them did (`executor._notify`)
    includes_ran: Vec<Value>,
    /// indexes of the play's notified handlers
    notified: Vec<usize>,
    /// become children, one per identity (become.rs)
    children: RefCell<Children>,
    /// a hybrid program's `python` entry, and the run's Python child (python_side.rs)
    python_entry: Option<Map>,
    python: PythonSide,
    /// the host's interpreter discovery (`{"mode", "fallback", "no_python"}`, compiler/native.py),
    /// reported by its first Python module's result; None once reported, or when the host names
    /// its interpreter
    discovery: Option<Map>,
}

impl<'a> Runner<'a> {
    fn run(&mut self, binary_name: &str, plays: &[Value]) -> i32 {
        let start = Instant::now();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.emitter.emit(&map(vec![
            ("event", Value::from("run_start")),
            ("host", Value::from(self.host)),
            ("run_id", Value::from(self.opts.run_id.as_str())),
            ("time", Value::Float(now)),
            ("binary_name", Value::from(binary_name)),
            ("check", Value::Bool(self.check)),
            ("diff", Value::Bool(self.diff)),
            ("protocol", Value::Int(1)),
            ("runner", Value::from(env!("CARGO_PKG_VERSION"))),
        ]));
        let empty = Map::new();
        let failed = plays
            .iter()
            .any(|play| self.run_play(play.as_dict().unwrap_or(&empty)).is_err());
        let mut recap = map(vec![
            ("event", Value::from("recap")),
            ("host", Value::from(self.host)),
        ]);
        for (name, count) in STATS.iter().zip(self.stats.iter()) {
            recap.insert(name, Value::Int(*count));
        }
        recap.insert("duration", round6(start.elapsed().as_secs_f64()));
        self.emitter.emit(&recap);
        self.children.borrow_mut().close();
        self.python.close();
        if failed {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    fn run_play(&mut self, play: &Map) -> Result<(), HostFailed> {
        self.notified.clear();
        let handlers = as_list(play.get("handlers"));
        let name = play.get("name").cloned().unwrap_or_else(|| Value::from(""));
        self.emitter.emit(&map(vec![
            ("event", Value::from("play_start")),
            ("play", name),
            ("host", Value::from(self.host)),
        ]));
        for task in as_list(play.get("tasks")) {
            self.run_task(task.as_dict().unwrap_or(&Map::new()), false, &handlers)?;
        }
        // as Ansible: a flush after the tasks and one after the (empty) post_tasks; what is
        // notified after that is forgotten
        self.flush_handlers(&handlers)?;
        self.flush_handlers(&handlers)
    }

    /// One walk over the handlers in order, as Ansible's: each notified handler runs once; one
    /// notified during the walk runs now if it comes later, else at the next flush (so handlers
    /// that notify each other never loop).
    fn flush_handlers(&mut self, handlers: &[Value]) -> Result<(), HostFailed> {
        let empty = Map::new();
        for (index, handler) in handlers.iter().enumerate() {
            if let Some(at) = self.notified.iter().position(|i| *i == index) {
                self.notified.remove(at);
                self.run_task(handler.as_dict().unwrap_or(&empty), true, handlers)?;
            }
        }
        Ok(())
    }

    fn run_task(
        &mut self,
        task: &Map,
        is_handler: bool,
        handlers: &[Value],
    ) -> Result<(), HostFailed> {
        if task.contains_key("block") {
            return self.run_container(task, is_handler, handlers);
        }
        let tags: Vec<String> = as_list(task.get("tags")).iter().map(json::py_str).collect();
        if !is_handler && !tags_selected(&tags, &self.opts.tags, &self.opts.skip_tags) {
            return Ok(());
        }
        if let Some(Value::Dict(reference)) = task.get("python") {
            return self.run_python(task, reference, is_handler, handlers);
        }
        let module = task.get("module").cloned().unwrap_or(Value::Null);
        let name = match task.get("name") {
            Some(name) if truthy(name) => name.clone(),
            _ => task
                .get("module")
                .cloned()
                .unwrap_or_else(|| Value::from("")),
        };
        let head = map(vec![
            ("id", task.get("id").cloned().unwrap_or(Value::Null)),
            ("task", name),
            ("module", module),
        ]);
        let kind = if is_handler { "handler" } else { "task" };
        let mut start_event = head.clone();
        start_event.insert("event", Value::from(format!("{}_start", kind)));
        self.emitter.emit(&start_event);
        let started = Instant::now();
        let result = self.execute(task);
        let flag = |m: &Map, k: &str| m.get(k).map_or(false, truthy);
        let ignored = flag(&result, "failed") && flag(task, "ignore_errors");
        if let Some(Value::Str(register)) = task.get("register") {
            if !register.is_empty() {
                // as ansible-core's strategy registers it: without the module's `invocation`
                // (its arguments as given), as the Python runtime does
                let mut registered = result.clone();
                registered.remove("invocation");
                self.registered.insert(register, Value::Dict(registered));
            }
        }
        let status = status(&result);
        let mut event = head;
        event.insert("event", Value::from(format!("{}_result", kind)));
        event.insert("status", Value::from(status));
        event.insert("ignored", Value::Bool(ignored));
        for (k, v) in self.event_fields(&result, task).0 {
            event.insert(&k, v);
        }
        event.insert("duration", round6(started.elapsed().as_secs_f64()));
        let rescued = status == "failed" && !ignored && self.rescuing > 0;
        if rescued {
            event.insert("rescued", Value::Bool(true));
        }
        if flag(task, "no_log") {
            event = censor(&event);
        }
        self.emitter.emit(&event);
        if status != "skipped" {
            self.ran += 1;
        }
        if rescued {
            self.stats[4] += 1;
        } else {
            self.count(status, ignored, flag(&result, "changed"));
        }
        if status == "failed" && !ignored {
            self.failure = Some((task.clone(), result));
            return Err(HostFailed);
        }
        if flag(&result, "changed") && !flag(&result, "failed") {
            self.notify(&as_list(task.get("notify")), handlers);
        }
        Ok(())
    }

    /// A task of a hybrid program that the host's Python runs (python_side.rs, the runtime's
    /// `serve.py`): it gets the names the run has set and runs the task as a pyz run would; the
    /// runner emits its events and takes back what it set, notified, counted and whether it
    /// failed the host.
    fn run_python(
        &mut self,
        task: &Map,
        reference: &Map,
        is_handler: bool,
        handlers: &[Value],
    ) -> Result<(), HostFailed> {
        let mut request = reference.clone();
        request.insert("handler", Value::Bool(is_handler));
        request.insert("vars", Value::Dict(self.registered.clone()));
        request.insert("rescuing", Value::Int(self.rescuing as i64));
        if let Some(discovery) = &self.discovery {
            if self.registered.get("discovered_interpreter_python").is_none() {
                // not reported yet: the Python side reports it if this task runs a Python module
                // (serve.py), as ansible-core reports it on the first one
                request.insert("discovery", Value::Dict(discovery.clone()));
            }
        }
        let entry = self.python_entry.clone().unwrap_or_default();
        let strings = |items: &[String]| Value::List(items.iter().map(|t| Value::from(t.as_str())).collect());
        let start = map(vec![
            ("host", Value::from(self.host)),
            ("check", Value::Bool(self.check)),
            ("diff", Value::Bool(self.diff)),
            ("tags", strings(&self.opts.tags)),
            ("skip_tags", strings(&self.opts.skip_tags)),
            ("verbosity", Value::Int(self.opts.verbosity)),
            ("run_id", Value::from(self.opts.run_id.as_str())),
            ("host_vars", entry.get("host_vars").cloned().unwrap_or_else(|| Value::Dict(Map::new()))),
        ]);
        let answer = match self.python.call(&entry, self.files, &start, &request) {
            Ok(answer) => answer,
            Err(msg) => {
                // the task could not reach Python: its failure, reported as the runner reports one
                let head = map(vec![
                    ("id", task.get("id").cloned().unwrap_or(Value::Null)),
                    ("task", task.get("name").cloned().unwrap_or(Value::Null)),
                    ("module", task.get("module").cloned().unwrap_or(Value::Null)),
                ]);
                let kind = if is_handler { "handler" } else { "task" };
                let mut start_event = head.clone();
                start_event.insert("event", Value::from(format!("{}_start", kind)));
                self.emitter.emit(&start_event);
                let result = failure(msg);
                let mut event = head;
                event.insert("event", Value::from(format!("{}_result", kind)));
                event.insert("status", Value::from("failed"));
                event.insert("ignored", Value::Bool(false));
                for (k, v) in self.event_fields(&result, task).0 {
                    event.insert(&k, v);
                }
                event.insert("duration", round6(0.0));
                if self.rescuing > 0 {
                    event.insert("rescued", Value::Bool(true));
                    self.stats[4] += 1;
                } else {
                    self.count("failed", false, false);
                }
                self.emitter.emit(&event);
                self.ran += 1;
                self.failure = Some((task.clone(), result));
                return Err(HostFailed);
            }
        };
        for event in as_list(answer.get("events")) {
            if let Value::Dict(event) = event {
                self.emitter.emit(&event);
            }
        }
        if let Some(Value::Dict(set)) = answer.get("vars") {
            for (key, value) in set.iter() {
                self.registered.insert(key, value.clone());
            }
        }
        if let Some(Value::Str(path)) = answer.get("discovered") {
            self.discovered(path);
        }
        if let Some(Value::Dict(stats)) = answer.get("stats") {
            for (i, name) in STATS.iter().enumerate() {
                self.stats[i] += stats.get(name).and_then(Value::as_i64).unwrap_or(0);
            }
        }
        self.ran += answer.get("ran").and_then(Value::as_i64).unwrap_or(0) as usize;
        self.notify(&as_list(answer.get("notify")), handlers);
        if answer.get("failed").map_or(false, truthy) {
            let get = |key: &str| answer.get(key).and_then(Value::as_dict).cloned().unwrap_or_default();
            self.failure = Some((get("failed_task"), get("failed_result")));
            return Err(HostFailed);
        }
        Ok(())
    }

    /// Notes the handlers that `names` (topics) reach; an include_role's handler only once its
    /// include ran here.
    fn notify(&mut self, names: &[Value], handlers: &[Value]) {
        let empty = Map::new();
        for (index, handler) in handlers.iter().enumerate() {
            let handler = handler.as_dict().unwrap_or(&empty);
            let known = match handler.get("included_by") {
                Some(ids) if !ids.is_null() => as_list(Some(ids)).iter().any(|i| self.includes_ran.contains(i)),
                _ => true,
            };
            let topics = handler_topics(handler);
            if known && topics.iter().any(|t| names.contains(t)) && !self.notified.contains(&index) {
                self.notified.push(index);
            }
        }
    }

    /// A block or an include (`executor._run_container`): its `when` once, an include's own
    /// result (`included`, or skipped) and register, then its sections.
    fn run_container(
        &mut self,
        task: &Map,
        is_handler: bool,
        handlers: &[Value],
    ) -> Result<(), HostFailed> {
        let include = task.get("include").filter(|v| !v.is_null()).cloned();
        if include.is_some() && !is_handler {
            let tags: Vec<String> = as_list(task.get("tags")).iter().map(json::py_str).collect();
            if !tags_selected(&tags, &self.opts.tags, &self.opts.skip_tags) {
                return Ok(());
            }
        }
        let head = map(vec![
            ("id", task.get("id").cloned().unwrap_or(Value::Null)),
            ("task", task.get("name").cloned().unwrap_or_else(|| Value::from("include"))),
            ("module", Value::from("include")),
        ]);
        let decided = {
            let scope = Scope::new(vec![&self.base, &self.registered]);
            let mut decided = Ok(true);
            for cond in as_list(task.get("when")) {
                match expr::condition(&cond, &scope) {
                    Ok(true) => {}
                    other => {
                        decided = other;
                        break;
                    }
                }
            }
            decided
        };
        let register = match (&include, task.get("register")) {
            (Some(_), Some(Value::Str(name))) if !name.is_empty() => Some(name.clone()),
            _ => None,
        };
        match decided {
            Err(e) => {
                // as ansible-core's include task fails: registered, and its own ignore_errors applies
                let ignored = include.is_some() && task.get("ignore_errors").map_or(false, truthy);
                let result = failure(if include.is_some() { format!("Task failed: {}", e) } else { e });
                if let Some(name) = &register {
                    self.registered.insert(name, Value::Dict(result.clone()));
                }
                return self.container_event_ignored(head, result, &include, ignored);
            }
            Ok(false) => {
                if include.is_some() {
                    let skipped = map(vec![
                        ("skip_reason", Value::from("Conditional result was False")),
                        ("changed", Value::Bool(false)),
                        ("skipped", Value::Bool(true)),
                    ]);
                    if let Some(name) = &register {
                        self.registered.insert(name, Value::Dict(skipped.clone()));
                    }
                    self.container_event(head, skipped, &include)?;
                }
                return Ok(());
            }
            Ok(true) => {}
        }
        // an include whose file is chosen with the host's data: chosen now (executor._choose),
        // before the include reports
        let chosen = match task.get("choose").and_then(Value::as_dict) {
            Some(choice) => {
                let picked = {
                    let scope = Scope::new(vec![&self.base, &self.registered]);
                    choose(choice, &scope)
                };
                match picked.and_then(|i| {
                    as_list(task.get("choices")).get(i).and_then(Value::as_dict).cloned().ok_or_else(|| format!("malformed include choice {}", i))
                }) {
                    Ok(body) => Some(body),
                    Err(e) => return self.container_event(head, failure(e), &include),
                }
            }
            None => None,
        };
        if include.is_some() {
            if let Some(id) = task.get("id") {
                self.includes_ran.push(id.clone());
            }
            self.container_event(head, map(vec![("changed", Value::Bool(false))]), &include)?;
        }
        if let Some(name) = &register {
            let mut one = task
                .get("include_result")
                .and_then(Value::as_dict)
                .cloned()
                .unwrap_or_default();
            one.insert("changed", Value::Bool(false));
            self.registered.insert(name, Value::Dict(one));
        }
        let once = task.get("role_once").filter(|v| !v.is_null()).cloned();
        if let Some(once) = &once {
            if self.roles_done.contains(once) {
                return Ok(()); // Ansible runs a repeated role once, when a task of it ran before
            }
        }
        let ran = self.ran;
        let outcome = self.run_sections(chosen.as_ref().unwrap_or(task), is_handler, handlers);
        if let Some(once) = once {
            if self.ran > ran && !self.roles_done.contains(&once) {
                self.roles_done.push(once);
            }
        }
        outcome
    }

    /// The `included`/`skipped`/`failed` result an include reports, counted as Ansible.
    fn container_event(
        &mut self,
        head: Map,
        result: Map,
        include: &Option<Value>,
    ) -> Result<(), HostFailed> {
        self.container_event_ignored(head, result, include, false)
    }

    /// As `container_event`; `ignored`: a failure its ignore_errors ignores.
    fn container_event_ignored(
        &mut self,
        head: Map,
        result: Map,
        include: &Option<Value>,
        ignored: bool,
    ) -> Result<(), HostFailed> {
        let status = status(&result);
        let mut event = head;
        event.insert("event", Value::from("task_result"));
        event.insert("status", Value::from(status));
        event.insert("ignored", Value::Bool(ignored));
        if let Some(include) = include {
            event.insert("include", include.clone());
        }
        for (k, v) in self.event_fields(&result, &Map::new()).0 {
            event.insert(&k, v);
        }
        self.emitter.emit(&event);
        self.count(status, ignored, false);
        if status == "failed" && !ignored {
            return Err(HostFailed);
        }
        Ok(())
    }

    /// block, then rescue when it failed (seeing `ansible_failed_task`/`_result`), then always.
    fn run_sections(
        &mut self,
        task: &Map,
        is_handler: bool,
        handlers: &[Value],
    ) -> Result<(), HostFailed> {
        let rescue = as_list(task.get("rescue"));
        let empty = Map::new();
        let mut failed = false;
        if !rescue.is_empty() {
            self.rescuing += 1;
        }
        for child in as_list(task.get("block")) {
            if self.run_task(child.as_dict().unwrap_or(&empty), is_handler, handlers).is_err() {
                failed = true;
                break;
            }
        }
        if !rescue.is_empty() {
            self.rescuing -= 1;
        }
        if failed && !rescue.is_empty() {
            let (failed_task, failed_result) = self.failure.clone().unwrap_or_default();
            let name = failed_task
                .get("failed_name")
                .or_else(|| failed_task.get("name"))
                .cloned()
                .unwrap_or_else(|| Value::from(""));
            let get = |key: &str| failed_task.get(key).cloned().unwrap_or(Value::Null);
            let info = map(vec![("name", name), ("action", get("module")), ("id", get("id"))]);
            self.registered.insert("ansible_failed_task", Value::Dict(info));
            self.registered.insert("ansible_failed_result", Value::Dict(failed_result));
            failed = false;
            for child in rescue {
                if self.run_task(child.as_dict().unwrap_or(&empty), is_handler, handlers).is_err() {
                    failed = true;
                    break;
                }
            }
        }
        for child in as_list(task.get("always")) {
            self.run_task(child.as_dict().unwrap_or(&empty), is_handler, handlers)?;
        }
        if failed {
            return Err(HostFailed);
        }
        Ok(())
    }

    fn count(&mut self, status: &str, ignored: bool, changed: bool) {
        let mut add = |name: &str| {
            let i = STATS.iter().position(|s| *s == name).unwrap_or(0);
            self.stats[i] += 1;
        };
        if status == "skipped" {
            add("skipped");
        } else if status == "failed" && !ignored {
            add("failed");
        } else {
            add("ok");
            if changed {
                add("changed");
            }
            if ignored {
                add("ignored");
            }
        }
    }

    fn event_fields(&self, result: &Map, task: &Map) -> Map {
        let mut out = map(vec![
            ("rc", result.get("rc").cloned().unwrap_or(Value::Null)),
            (
                "stdout",
                result
                    .get("stdout")
                    .cloned()
                    .unwrap_or_else(|| Value::from("")),
            ),
            (
                "stderr",
                result
                    .get("stderr")
                    .cloned()
                    .unwrap_or_else(|| Value::from("")),
            ),
            (
                "msg",
                result
                    .get("msg")
                    .cloned()
                    .unwrap_or_else(|| Value::from("")),
            ),
        ]);
        for (key, value) in result.iter() {
            if !out.contains_key(key) && !HIDDEN.contains(&key.as_str()) && key != "results" {
                out.insert(key, value.clone());
            }
        }
        if !self.task_mode(task, "diff", self.diff) {
            out.remove("diff");
        }
        if let Some(results) = result.get("results") {
            let items = as_list(Some(results))
                .iter()
                .map(|item| {
                    let item = item.as_dict().cloned().unwrap_or_default();
                    let mut entry = map(vec![("status", Value::from(status(&item)))]);
                    for (k, v) in self.event_fields(&item, task).0 {
                        entry.insert(&k, v);
                    }
                    Value::Dict(entry)
                })
                .collect();
            out.insert("results", Value::List(items));
        }
        out
    }

    /// The task's `check_mode`/`diff`, or the run's when the task leaves it unset.
    fn task_mode(&self, task: &Map, key: &str, run: bool) -> bool {
        match task.get(key) {
            None | Some(Value::Null) => run,
            Some(value) => truthy(value),
        }
    }

    /// The discovered interpreter, once per run (the fact, kept as a variable and in
    /// `ansible_facts`); None when the host names its interpreter or discovery already ran.
    fn discovered_python(&mut self) -> Option<String> {
        let discovery = self.discovery.as_ref()?;
        let fallback = discovery.get("fallback").and_then(Value::as_list).cloned().unwrap_or_default();
        let path = discover_python(&fallback).unwrap_or_else(|| "/usr/bin/python3".to_string());
        self.registered.insert("discovered_interpreter_python", Value::from(path.as_str()));
        Some(path)
    }

    /// Discovery is done: the fact `path`, kept as a variable and in `ansible_facts`.
    fn discovered(&mut self, path: &str) {
        self.discovery = None;
        self.registered.insert("discovered_interpreter_python", Value::from(path));
        match self.base.get_mut("ansible_facts") {
            Some(Value::Dict(facts)) => facts.insert("discovered_interpreter_python", Value::from(path)),
            _ => self.base.insert(
                "ansible_facts",
                Value::Dict(map(vec![("discovered_interpreter_python", Value::from(path))])),
            ),
        }
    }

    /// What ansible-core adds to the result of the first Python module when it discovered the
    /// host's interpreter (runtime executor._report_discovery): the fact, the warning (not for
    /// `*_silent`) and, for `auto_legacy*`, the deprecation.
    fn report_discovery(&mut self, task: &Map, result: &mut Map) {
        let module = task.get("module").map(json::py_str).unwrap_or_default();
        let short = module.rsplit('.').next().unwrap_or("").to_string();
        let (mode, no_python, fallback) = match &self.discovery {
            Some(d) => (
                d.get("mode").map(json::py_str).unwrap_or_default(),
                d.get("no_python").and_then(Value::as_list).cloned().unwrap_or_default(),
                d.get("fallback").and_then(Value::as_list).cloned().unwrap_or_default(),
            ),
            None => return,
        };
        if status(result) == "skipped" && result.get("false_condition").is_some()
            || no_python.iter().any(|n| json::py_str(n) == short)
        {
            return;
        }
        if self.registered.get("discovered_interpreter_python").is_some() {
            self.discovery = None;
            return;
        }
        let found = discover_python(&fallback);
        let path = found.clone().unwrap_or_else(|| "/usr/bin/python3".to_string());
        self.discovered(&path);
        let mut facts = match result.get("ansible_facts") {
            Some(Value::Dict(f)) => f.clone(),
            _ => Map::new(),
        };
        facts.insert("discovered_interpreter_python", Value::from(path.as_str()));
        result.insert("ansible_facts", Value::Dict(facts));
        if !mode.ends_with("_silent") {
            let text = match found {
                Some(_) => format!(
                    "Host {} is using the discovered Python interpreter at {}, but future installation of \
                     another Python interpreter could cause a different interpreter to be discovered. See \
                     https://docs.ansible.com/ansible-core/2.19/reference_appendices/interpreter_discovery.html \
                     for more information.",
                    json::py_repr_str(self.host),
                    json::py_repr_str(&path)
                ),
                None => format!(
                    "No python interpreters found for host {} (tried {}).",
                    json::py_repr_str(self.host),
                    json::py_repr(&Value::List(fallback.clone()))
                ),
            };
            let mut warnings = result.get("warnings").and_then(Value::as_list).cloned().unwrap_or_default();
            warnings.push(Value::from(text.as_str()));
            result.insert("warnings", Value::List(warnings));
        }
        if mode.starts_with("auto_legacy") {
            let mut deprecations =
                result.get("deprecations").and_then(Value::as_list).cloned().unwrap_or_default();
            deprecations.push(Value::Dict(map(vec![
                (
                    "msg",
                    Value::from(format!("The {} option for 'INTERPRETER_PYTHON' now has the same effect as 'auto'.",
                                        json::py_repr_str(&mode)).as_str()),
                ),
                ("version", Value::from("2.21")),
                ("collection_name", Value::from("ansible.builtin")),
            ])));
            result.insert("deprecations", Value::List(deprecations));
        }
    }

    /// The names a `set_fact` result sets, kept for the rest of the run (`executor._invoke`).
    fn keep_facts(&mut self, result: &Map) {
        if !result.get("_set_fact").map_or(false, truthy) || result.get("failed").map_or(false, truthy) {
            return;
        }
        if let Some(Value::Dict(facts)) = result.get("ansible_facts") {
            for (key, value) in facts.iter() {
                self.registered.insert(key, value.clone());
            }
        }
    }

    /// The task's (registered) result, looping as the program says; a `set_fact` item's names
    /// are seen by the next item.
    fn execute(&mut self, task: &Map) -> Map {
        let entries = match task.get("loop") {
            None | Some(Value::Null) => {
                let mut result = {
                    let scope = Scope::new(vec![&self.base, &self.registered]);
                    self.execute_item(task, task.get("args"), task.get("when"), &scope)
                };
                self.report_discovery(task, &mut result);
                self.keep_facts(&result);
                return result;
            }
            Some(entries) => as_list(Some(entries)),
        };
        let loop_var = task
            .get("loop_var")
            .and_then(Value::as_str)
            .unwrap_or("item");
        let mut results = Vec::new();
        for entry in entries {
            let entry = entry.as_dict().cloned().unwrap_or_default();
            let item = entry.get("item").cloned().unwrap_or(Value::Null);
            let loop_vars = map(vec![
                (loop_var, item.clone()),
                ("ansible_loop_var", Value::from(loop_var)),
            ]);
            let mut res = {
                let scope = Scope::new(vec![&self.base, &self.registered]);
                let item_scope = scope.with(&loop_vars);
                self.execute_item(task, entry.get("args"), entry.get("when"), &item_scope)
            };
            self.report_discovery(task, &mut res);
            self.keep_facts(&res);
            res.insert(loop_var, item);
            res.insert("ansible_loop_var", Value::from(loop_var));
            // loop_control.index_var: the index and its name, decided by the compiler
            if let Some(shown) = entry.get("result").and_then(Value::as_dict) {
                for (key, value) in shown.iter() {
                    res.insert(key, value.clone());
                }
            }
            if let Some(label) = entry.get("label") {
                res.insert("_ansible_item_label", label.clone());
            }
            results.push(res);
        }
        aggregate(results)
    }

    fn execute_item(
        &self,
        task: &Map,
        args: Option<&Value>,
        when: Option<&Value>,
        scope: &Scope,
    ) -> Map {
        for cond in as_list(when) {
            match expr::condition(&cond, scope) {
                Ok(true) => {}
                Ok(false) => {
                    return map(vec![
                        ("changed", Value::Bool(false)),
                        ("skipped", Value::Bool(true)),
                        ("skip_reason", Value::from("Conditional result was False")),
                        ("false_condition", expr::cond_text(&cond)),
                    ])
                }
                Err(e) => return with_exception(failure(format!("Task failed: {}", e))),
            }
        }
        let result = self.invoke(task, args, scope);
        with_exception(self.post_conditions(task, scope, result))
    }

    /// `changed_when` and `failed_when`, seeing the result under the task's `register` name.
    fn post_conditions(&self, task: &Map, scope: &Scope, mut result: Map) -> Map {
        let cw = task.get("changed_when").filter(|v| !v.is_null());
        let fw = task.get("failed_when").filter(|v| !v.is_null());
        if (cw.is_none() && fw.is_none()) || result.get("skipped").map_or(false, truthy) {
            return result;
        }
        if result.get("failed").map_or(false, truthy) {
            result = with_exception(result); // a module's failure carries its summary, as in 2.19
        }
        let register = task
            .get("register")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty());
        let holds = |conds: &Value, result: &Map| -> Result<bool, String> {
            let layer = register.map(|r| map(vec![(r, Value::Dict(result.clone()))]));
            let with_layer;
            let check_scope = match &layer {
                Some(layer) => {
                    with_layer = scope.with(layer);
                    &with_layer
                }
                None => scope,
            };
            for cond in as_list(Some(conds)) {
                if !expr::condition(&cond, check_scope)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let mut which = "changed_when_result";
        let outcome = (|| -> Result<(), String> {
            if let Some(cw) = cw {
                if !result.contains_key("_meta") {
                    let changed = holds(cw, &result)?;
                    result.insert("changed", Value::Bool(changed));
                }
            }
            if let Some(fw) = fw {
                which = "failed_when_result";
                let failed = holds(fw, &result)?;
                result.insert("failed_when_result", Value::Bool(failed));
                result.insert("failed", Value::Bool(failed));
                if !failed {
                    // the failure failed_when overruled keeps its summary under another name
                    if let Some(exception) = result.remove("exception") {
                        result.insert("failed_when_suppressed_exception", exception);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            // ansible-core keeps the module's msg and the error in <keyword>_result only
            result.insert("failed", Value::Bool(true));
            result.insert(which, Value::Str(e));
        }
        result
    }

    /// Run the module once and normalise its result (`executor._invoke`).
    fn invoke(&self, task: &Map, args: Option<&Value>, scope: &Scope) -> Map {
        let module = task.get("module").and_then(Value::as_str).unwrap_or("");
        let empty = Map::new();
        let rendered = (|| -> Result<(Option<Value>, Map), String> {
            let args = match args {
                Some(args) => Some(render(args, scope)?),
                None => None,
            };
            let environment = match task.get("environment").and_then(Value::as_dict) {
                Some(env) => match render(&Value::Dict(env.clone()), scope)? {
                    Value::Dict(env) => env,
                    _ => Map::new(),
                },
                None => Map::new(),
            };
            Ok((args, environment))
        })();
        let (args, environment) = match rendered {
            Ok(rendered) => rendered,
            Err(e) => return failure(args_error(module, args, scope, &e)),
        };
        let args = match args.as_ref().map(strip_omit) {
            Some(Value::Dict(args)) => args,
            _ => empty,
        };
        let check = self.task_mode(task, "check_mode", self.check);
        let diff = self.task_mode(task, "diff", self.diff);
        let mut result = match become_as::identity(task.get("become"), module) {
            Ok(None) => {
                let mut ctx = Ctx {
                    module,
                    check,
                    diff,
                    environment: &environment,
                    files: self.files,
                    warnings: Vec::new(),
                };
                let host = Host {
                    vars: scope,
                    verbosity: self.opts.verbosity,
                };
                let timeout = task.get("timeout").and_then(Value::as_f64);
                modules::command::with_deadline(timeout, || modules::call(module, &mut ctx, &args, Some(&host)))
            }
            Ok(Some(key)) => {
                let request = map(vec![
                    ("module", Value::from(module)),
                    ("files", Value::Dict(become_as::task_files(&args, self.files))),
                    ("args", Value::Dict(args)),
                    ("check", Value::Bool(check)),
                    ("diff", Value::Bool(diff)),
                    ("environment", Value::Dict(environment)),
                    ("timeout", task.get("timeout").cloned().unwrap_or(Value::Null)),
                ]);
                match self.children.borrow_mut().run(&key, &request) {
                    Ok(result) => result,
                    Err(msg) => failure(msg),
                }
            }
            Err(msg) => failure(msg),
        };
        for key in ["changed", "failed"] {
            if !result.contains_key(key) {
                result.insert(key, Value::Bool(false));
            }
        }
        for stream in ["stdout", "stderr"] {
            let lines_key = format!("{}_lines", stream);
            if let (Some(Value::Str(text)), false) =
                (result.get(stream), result.contains_key(&lines_key))
            {
                let lines = splitlines(text);
                result.insert(&lines_key, Value::List(lines));
            }
        }
        result
    }
}

/// What a `notify` may name to reach `handler`: its name, or a topic it listens to.
fn handler_topics(handler: &Map) -> Vec<Value> {
    let mut topics = vec![handler.get("name").cloned().unwrap_or(Value::Null)];
    topics.extend(
        as_list(handler.get("listen"))
            .iter()
            .map(|t| Value::Str(json::py_str(t))),
    );
    topics
}

/// The registered result of a loop: its items' results and the summary Ansible gives.
fn aggregate(results: Vec<Map>) -> Map {
    let any = |k: &str| results.iter().any(|r| r.get(k).map_or(false, truthy));
    let all_skipped = !results.is_empty()
        && results
            .iter()
            .all(|r| r.get("skipped").map_or(false, truthy));
    let mut out = map(vec![
        ("changed", Value::Bool(any("changed"))),
        ("results", Value::List(Vec::new())),
        ("skipped", Value::Bool(all_skipped)),
    ]);
    if any("failed") {
        out.insert("failed", Value::Bool(true));
        out.insert("msg", Value::from("One or more items failed"));
    } else if all_skipped {
        out.insert("msg", Value::from("All items skipped"));
    } else {
        out.insert("msg", Value::from("All items completed"));
    }
    if results.is_empty() {
        out.insert("skipped", Value::Bool(true));
        out.insert("skipped_reason", Value::from("No items in the list"));
    }
    out.insert(
        "results",
        Value::List(results.into_iter().map(Value::Dict).collect()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_string};
    use std::path::PathBuf;

    const ARTIFACT: &str = r#"{"format": "rustle-native", "version": 1, "runner": "x", "binary_name": "site",
      "runtime_version": "t", "check_mode": false, "diff_mode": false, "files": {},
      "hosts": {"web1": {"plays": [{"name": "p1", "tasks": [
        {"id": "t1", "name": "echo", "module": "shell", "tags": [], "register": "out",
         "args": {"_raw_params": "echo hi"}, "when": [], "loop": null, "loop_var": "item",
         "changed_when": [{"expr": "out.stdout == 'hi'", "ir": ["cmp", "==", ["attr", ["name", "out"], "stdout"], ["lit", "hi"]]}],
         "failed_when": null, "ignore_errors": false, "no_log": false, "notify": ["restart"],
         "check_mode": null, "diff": null, "environment": {}},
        {"id": "t2", "name": "", "module": "debug", "register": null, "args": null,
         "when": [{"expr": "out is changed", "ir": ["test", "changed", ["name", "out"], [], {}]}],
         "loop": [{"item": 1, "args": {"msg": "one"}, "when": [], "label": "first"},
                  {"item": 2, "args": {"msg": "two"}, "when": [{"expr": "item == 1", "ir": ["cmp", "==", ["name", "item"], ["lit", 1]]}]}],
         "loop_var": "item", "changed_when": null, "failed_when": null, "ignore_errors": false,
         "no_log": false, "notify": [], "check_mode": null, "diff": null, "environment": {}},
        {"id": "t3", "name": "secret", "module": "shell", "args": {"_raw_params": "echo pw; exit 1"},
         "when": [], "loop": null, "ignore_errors": true, "no_log": true, "notify": []},
        {"id": "t4", "name": "nope", "module": "service", "args": {}, "when": [], "loop": null,
         "ignore_errors": true, "notify": []},
        {"id": "t5", "name": "skipped", "module": "ping", "args": {}, "loop": null,
         "when": [{"expr": "out.rc != 0", "ir": ["cmp", "!=", ["attr", ["name", "out"], "rc"], ["lit", 0]]}]}
      ], "handlers": [
        {"id": "h1", "name": "restart", "module": "ping", "args": {"data": "h"}, "when": [], "loop": null},
        {"id": "h2", "name": "other", "module": "ping", "args": {}, "when": [], "loop": null}
      ]}, {"name": "p2", "tasks": [
        {"id": "t6", "name": "fails", "module": "assert", "args": {"that": [{"expr": "out.rc == 1",
         "ir": ["cmp", "==", ["attr", ["name", "out"], "rc"], ["lit", 1]]}]}, "when": [], "loop": null},
        {"id": "t7", "name": "never", "module": "ping", "args": {}, "when": [], "loop": null}
      ], "handlers": []}]}}}"#;

    fn temp_dir(name: &str) -> PathBuf {
        crate::test_dir("executor", name)
    }

    fn run(dir: &Path, host: &str) -> (i32, Vec<Map>) {
        let artifact = dir.join("artifact.json");
        std::fs::write(&artifact, crate::payload::seal(ARTIFACT)).unwrap();
        let journal = dir.join("journal.jsonl");
        let opts = RunOptions {
            journal: Some(journal.clone()),
            run_id: "r1".into(),
            ..RunOptions::default()
        };
        let code = run_artifact(&artifact, host, &opts);
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let events = text
            .lines()
            .map(|l| parse(l).unwrap().as_dict().unwrap().clone())
            .collect();
        (code, events)
    }

    fn show(event: &Map, keys: &[&str]) -> String {
        let picked: Vec<(String, Value)> = keys
            .iter()
            .filter_map(|k| event.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        to_string(&Value::Dict(Map(picked)))
    }

    #[test]
    fn runs_plays_tasks_loops_handlers_and_stops_at_a_failure() {
        let dir = temp_dir("run");
        let (code, events) = run(&dir, "web1");
        assert_eq!(code, EXIT_FAILED);
        let kinds: Vec<String> = events
            .iter()
            .map(|e| json::py_str(e.get("event").unwrap()))
            .collect();
        assert_eq!(
            kinds.join(" "),
            "run_start play_start task_start task_result task_start task_result task_start task_result \
             task_start task_result task_start task_result handler_start handler_result play_start \
             task_start task_result recap"
        );
        let keys = [
            "task",
            "status",
            "ignored",
            "msg",
            "stdout",
            "changed",
            "censored",
            "skip_reason",
            "false_condition",
        ];
        let results: Vec<String> = events
            .iter()
            .filter(|e| e.get("status").is_some())
            .map(|e| show(e, &keys))
            .collect();
        assert_eq!(
            results[0],
            r#"{"task": "echo", "status": "changed", "ignored": false, "msg": "", "stdout": "hi", "changed": true}"#
        );
        assert_eq!(
            results[1],
            r#"{"task": "debug", "status": "ok", "ignored": false, "msg": "All items completed", "stdout": "", "changed": false}"#
        );
        let items = events[5].get("results").unwrap().as_list().unwrap();
        assert_eq!(
            to_string(&items[0]),
            r#"{"status": "ok", "rc": null, "stdout": "", "stderr": "", "msg": "one", "changed": false, "failed": false, "item": 1, "ansible_loop_var": "item", "_ansible_item_label": "first"}"#
        );
        assert_eq!(
            show(items[1].as_dict().unwrap(), &["status", "false_condition"]),
            r#"{"status": "skipped", "false_condition": "item == 1"}"#
        );
        assert_eq!(
            results[2],
            format!(
                r#"{{"task": "secret", "status": "failed", "ignored": true, "changed": true, "censored": "{}"}}"#,
                crate::events::CENSORED
            )
        );
        assert_eq!(
            results[3],
            r#"{"task": "nope", "status": "failed", "ignored": true, "msg": "module service is not supported by the native runner", "stdout": "", "changed": false}"#
        );
        assert_eq!(
            results[4],
            r#"{"task": "skipped", "status": "skipped", "ignored": false, "msg": "", "stdout": "", "changed": false, "skip_reason": "Conditional result was False", "false_condition": "out.rc != 0"}"#
        );
        assert_eq!(
            show(&events[13], &["task", "status", "ping"]),
            r#"{"task": "restart", "status": "ok", "ping": "h"}"#
        );
        assert_eq!(
            show(&events[16], &["task", "status", "msg"]),
            r#"{"task": "fails", "status": "failed", "msg": "Assertion failed"}"#
        );
        assert_eq!(
            show(
                events.last().unwrap(),
                &["ok", "changed", "failed", "skipped", "ignored"]
            ),
            r#"{"ok": 5, "changed": 2, "failed": 1, "skipped": 1, "ignored": 2}"#
        );
        assert_eq!(
            show(&events[0], &["host", "run_id", "binary_name", "protocol"]),
            r#"{"host": "web1", "run_id": "r1", "binary_name": "site", "protocol": 1}"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_host_is_a_usage_error() {
        let dir = temp_dir("unknown");
        let (code, events) = run(&dir, "db1");
        assert_eq!(code, EXIT_USAGE);
        assert!(events.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tag_selection_matches_ansible() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        assert!(tags_selected(&s(&[]), &s(&[]), &s(&[])));
        assert!(!tags_selected(&s(&["never"]), &s(&[]), &s(&[])));
        assert!(tags_selected(&s(&["never", "x"]), &s(&["x"]), &s(&[])));
        assert!(tags_selected(&s(&["always"]), &s(&["x"]), &s(&[])));
        assert!(!tags_selected(&s(&["always"]), &s(&[]), &s(&["always"])));
        assert!(tags_selected(&s(&["always"]), &s(&[]), &s(&["all"])));
        assert!(!tags_selected(&s(&["a"]), &s(&["tagged"]), &s(&["a"])));
        assert!(!tags_selected(&s(&[]), &s(&["tagged"]), &s(&[])));
        assert!(tags_selected(&s(&[]), &s(&["untagged"]), &s(&[])));
    }

    fn render_with(args: &str) -> Result<Value, String> {
        let layer = parse(
            r#"{"r": {"rc": 0, "stdout": "hi", "n": null, "f": 1.5, "g": 2.0, "big": 1e20,
                      "ok": true, "l": [1, "a", null, false], "d": {"k": "it's", "z": [0.1]}}}"#,
        )
        .unwrap();
        let base = map(vec![("ansible_check_mode", Value::Bool(true))]);
        let layer = layer.as_dict().unwrap();
        render(&parse(args).unwrap(), &Scope::new(vec![&base, layer]))
    }

    fn text(parts: &str) -> String {
        format!(r#"{{"__rustle_template__": {}}}"#, parts)
    }

    fn expr_arg(path: &str) -> String {
        format!(r#"{{"__rustle_expr__": {{"expr": "e", "ir": {}}}}}"#, path)
    }

    fn var(path: &str) -> String {
        format!(r#"{{"expr": "e", "ir": {}}}"#, path)
    }

    #[test]
    fn one_expression_and_a_newline_is_its_value_and_text_gets_the_newline() {
        let with_newline = |ir: &str| format!(r#"{{"__rustle_expr__": {{"expr": "x", "ir": {}, "newline": true}}}}"#, ir);
        assert_eq!(render_with(&with_newline(r#"["attr", ["name", "r"], "stdout"]"#)).unwrap(), Value::from("hi\n"));
        assert_eq!(to_string(&render_with(&with_newline(r#"["attr", ["name", "r"], "d"]"#)).unwrap()), r#"{"k": "it's", "z": [0.1]}"#);
    }

    #[test]
    fn a_none_valued_node_writes_nothing_in_text() {
        // ansible-core 2.19: "a{{ none }}b" is "ab"; a list holding None still shows it
        let none = var(r#"["attr", ["name", "r"], "n"]"#);
        let list = var(r#"["attr", ["name", "r"], "l"]"#);
        let args = text(&format!(r#"["a", {}, "b ", {}]"#, none, list));
        assert_eq!(render_with(&args).unwrap(), Value::from("ab [1, 'a', None, False]"));
    }

    #[test]
    fn renders_templated_arguments_at_any_depth() {
        let rc = r#"["attr", ["name", "r"], "rc"]"#;
        let args = format!(
            r#"{{"plain": "x", "n": 3, "t": {}, "deep": {{"list": [1, {}, {{"e": {}}}]}},
                "native": {}, "mode": {}}}"#,
            text(&format!(r#"["rc=", {}, "!"]"#, var(rc))),
            text(&format!(
                r#"[{}]"#,
                var(r#"["attr", ["name", "r"], "stdout"]"#)
            )),
            expr_arg(r#"["attr", ["name", "r"], "l"]"#),
            expr_arg(r#"["attr", ["name", "r"], "d"]"#),
            expr_arg(r#"["name", "ansible_check_mode"]"#),
        );
        assert_eq!(
            to_string(&render_with(&args).unwrap()),
            r#"{"plain": "x", "n": 3, "t": "rc=0!", "deep": {"list": [1, "hi", {"e": [1, "a", null, false]}]}, "native": {"k": "it's", "z": [0.1]}, "mode": true}"#
        );
        // a marker next to other keys is data, not a template
        let data = r#"{"__rustle_expr__": 1, "other": 2}"#;
        assert_eq!(
            to_string(&render_with(data).unwrap()),
            r#"{"__rustle_expr__": 1, "other": 2}"#
        );
    }

    #[test]
    fn templated_text_uses_python_str() {
        let cases = [
            ("rc", "0"),
            ("f", "1.5"),
            ("g", "2.0"),
            ("big", "1e+20"),
            ("ok", "True"),
            ("n", ""), // a None-valued node writes nothing (ansible-core 2.19)
            ("l", "[1, 'a', None, False]"),
            ("d", r#"{'k': "it's", 'z': [0.1]}"#),
        ];
        for (key, want) in cases.iter() {
            let path = format!(r#"["attr", ["name", "r"], "{}"]"#, key);
            let arg = text(&format!(r#"["<", {}, ">"]"#, var(&path)));
            assert_eq!(
                render_with(&arg),
                Ok(Value::Str(format!("<{}>", want))),
                "{}",
                key
            );
        }
    }

    #[test]
    fn templated_undefined_values_are_errors() {
        assert_eq!(
            render_with(&format!(
                r#"{{"a": [{}]}}"#,
                text(&format!(r#"["x", {}]"#, var(r#"["name", "x"]"#)))
            )),
            Err("'x' is undefined".to_string())
        );
        assert_eq!(
            render_with(&expr_arg(r#"["attr", ["name", "r"], "y"]"#)),
            Err("object of type 'dict' has no attribute 'y'".to_string())
        );
        // default and defined still see undefined values
        assert_eq!(
            render_with(&expr_arg(
                r#"["filter", "default", ["name", "x"], [["lit", 5]], {}]"#
            )),
            Ok(Value::Int(5))
        );
    }

    const TEMPLATED: &str = r#"{"format": "rustle-native", "version": 1, "runner": "x", "binary_name": "site",
      "files": {}, "hosts": {"web1": {"facts": true, "plays": [{"name": "p", "tasks": [
        {"id": "t1", "module": "shell", "register": "out", "args": {"_raw_params": "echo hi"}, "when": []},
        {"id": "t2", "module": "debug", "when": [], "args": {"msg": {"__rustle_template__": [
          "said ", {"expr": "out.stdout", "ir": ["attr", ["name", "out"], "stdout"]},
          " on ", {"expr": "ansible_system", "ir": ["name", "ansible_system"]},
          "/", {"expr": "ansible_facts.os_family", "ir": ["attr", ["name", "ansible_facts"], "os_family"]},
          " tags ", {"expr": "ansible_run_tags", "ir": ["name", "ansible_run_tags"]},
          " skip ", {"expr": "ansible_skip_tags", "ir": ["name", "ansible_skip_tags"]},
          " check ", {"expr": "ansible_check_mode", "ir": ["name", "ansible_check_mode"]},
          " diff ", {"expr": "ansible_diff_mode", "ir": ["name", "ansible_diff_mode"]},
          " v ", {"expr": "ansible_verbosity", "ir": ["name", "ansible_verbosity"]}]}}},
        {"id": "t3", "module": "debug", "ignore_errors": true, "when": [],
         "loop": [{"item": 1, "args": {"msg": {"__rustle_expr__": {"expr": "nope.x", "ir": ["attr", ["name", "nope"], "x"]}}}, "when": []},
                  {"item": 2, "args": {"msg": {"__rustle_expr__": {"expr": "item", "ir": ["name", "item"]}}}, "when": []}]},
        {"id": "t4", "module": "debug", "args": {"msg": "checked"},
         "when": [{"expr": "ansible_check_mode", "ir": ["name", "ansible_check_mode"]}]}
      ], "handlers": []}]}}}"#;

    #[test]
    fn run_options_facts_and_templated_arguments_in_a_run() {
        let dir = temp_dir("templated");
        let artifact = dir.join("artifact.json");
        std::fs::write(&artifact, crate::payload::seal(TEMPLATED)).unwrap();
        let journal = dir.join("journal.jsonl");
        let opts = RunOptions {
            journal: Some(journal.clone()),
            run_id: "r1".into(),
            skip_tags: vec!["slow".into()],
            verbosity: 2,
            ..RunOptions::default()
        };
        assert_eq!(run_artifact(&artifact, "web1", &opts), EXIT_OK);
        let events: Vec<Map> = std::fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .map(|l| parse(l).unwrap().as_dict().unwrap().clone())
            .filter(|e| e.get("event") == Some(&Value::from("task_result")))
            .collect();
        let facts = crate::facts::gather();
        let fact = |k: &str| json::py_str(facts.get(k).unwrap());
        assert_eq!(
            json::py_str(events[1].get("msg").unwrap()),
            format!(
                "said hi on {}/{} tags ['all'] skip ['slow'] check False diff False v 2",
                fact("ansible_system"),
                fact("ansible_os_family")
            )
        );
        let items = events[2].get("results").unwrap().as_list().unwrap();
        assert_eq!(
            show(items[0].as_dict().unwrap(), &["status", "msg", "changed"]),
            r#"{"status": "failed", "msg": "Task failed: Finalization of task args for 'ansible.builtin.debug' failed: Error while resolving value for 'msg': 'nope' is undefined", "changed": false}"#
        );
        assert_eq!(
            show(items[1].as_dict().unwrap(), &["status", "msg"]),
            r#"{"status": "ok", "msg": 2}"#
        );
        assert_eq!(
            show(&events[3], &["status", "false_condition"]),
            r#"{"status": "skipped", "false_condition": "ansible_check_mode"}"#
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn facts_are_gathered_only_when_asked() {
        let opts = RunOptions {
            tags: vec!["a".into(), "b".into()],
            ..RunOptions::default()
        };
        let base = base_layer(&opts, true, false, false);
        assert_eq!(
            to_string(&Value::Dict(base)),
            r#"{"ansible_check_mode": true, "ansible_diff_mode": false, "ansible_verbosity": 0, "ansible_run_tags": ["a", "b"], "ansible_skip_tags": []}"#
        );
        let base = base_layer(&opts, false, false, true);
        assert!(base.get("ansible_facts").unwrap().get("user_uid").is_some());
        assert!(base.get("ansible_user_uid").is_some());
        assert_eq!(base.get("ansible_check_mode"), Some(&Value::Bool(false)));
    }

    #[test]
    fn splitlines_like_python() {
        let lines: Vec<String> = splitlines("a\r\nb\rc\n\nd\u{2028}")
            .iter()
            .map(json::py_str)
            .collect();
        assert_eq!(lines, ["a", "b", "c", "", "d"]);
    }
}
