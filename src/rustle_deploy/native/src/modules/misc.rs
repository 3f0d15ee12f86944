//! `assert`, `debug`, `fail` and `ping`, as the Python runtime's `modules/core.py`.
//!
//! Conditions arrive compiled: each `that` element and `debug`'s `var` is a COND object
//! `{"expr": source, "ir": NODE}`, evaluated with `expr.rs` against the registered results.

use super::{Ctx, Host, ModuleFailure, ModuleResult};
use crate::expr;
use crate::json::{self, Map, Value};

fn map(pairs: Vec<(&str, Value)>) -> Map {
    let mut out = Map::new();
    for (k, v) in pairs {
        out.insert(k, v);
    }
    out
}

pub fn assert_(_ctx: &mut Ctx, args: &Map, host: &Host) -> ModuleResult {
    let that = match args.get("that") {
        None | Some(Value::Null) => {
            return Err(ModuleFailure::new(
                "conditional required in \"that\" string",
            ))
        }
        Some(that) => that,
    };
    let conditions = match that {
        Value::List(items) => items.clone(),
        other => vec![other.clone()],
    };
    let fail_msg = args
        .get("fail_msg")
        .or_else(|| args.get("msg"))
        .cloned()
        .unwrap_or(Value::Null);
    let success_msg = args
        .get("success_msg")
        .cloned()
        .unwrap_or_else(|| Value::from("All assertions passed"));
    let quiet = args.get("quiet").map_or(false, expr::truthy);
    for cond in &conditions {
        let assertion = expr::cond_text(cond);
        // ansible-core 2.19: the task failed, without `assertion`
        let ok = expr::condition(cond, host.vars)
            .map_err(|e| ModuleFailure::new(format!("Task failed: {}", e)))?;
        if !ok {
            let msg = if fail_msg.is_null() {
                Value::from("Assertion failed")
            } else {
                fail_msg
            };
            return Ok(map(vec![
                ("changed", Value::Bool(false)),
                ("failed", Value::Bool(true)),
                ("assertion", assertion),
                ("evaluated_to", Value::Bool(false)),
                ("msg", msg),
            ]));
        }
    }
    let mut out = map(vec![("changed", Value::Bool(false)), ("msg", success_msg)]);
    if quiet {
        out.insert("_ansible_verbose_always", Value::Bool(false));
    }
    Ok(out)
}

/// `core._int`: Python's `int(value)`, or `default` where it raises.
fn int_or(value: &Value, default: i64) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::Bool(b) => *b as i64,
        Value::Float(f) if f.is_finite() => f.trunc() as i64,
        Value::Str(s) => {
            let t = s.trim_matches(expr::py_isspace);
            let digits = t.strip_prefix(|c| c == '+' || c == '-').unwrap_or(t);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
                return default;
            }
            t.replace('_', "").parse().unwrap_or(default)
        }
        _ => default,
    }
}

pub fn debug(_ctx: &mut Ctx, args: &Map, host: &Host) -> ModuleResult {
    if args.contains_key("msg") && args.contains_key("var") {
        return Err(ModuleFailure::new(
            "parameters are mutually exclusive: msg|var",
        ));
    }
    let verbosity = int_or(args.get("verbosity").unwrap_or(&Value::Int(0)), 0);
    if host.verbosity < verbosity {
        return Ok(map(vec![
            ("changed", Value::Bool(false)),
            ("skipped", Value::Bool(true)),
            (
                "skipped_reason",
                Value::from("Verbosity threshold not met."),
            ),
        ]));
    }
    if let Some(var) = args.get("var") {
        let (name, value) = match var {
            Value::Dict(c) if c.contains_key("ir") => {
                let name = json::py_str(c.get("expr").unwrap_or(&Value::Null));
                let node = c.get("ir").unwrap_or(&Value::Null);
                let value = expr::evaluate(node, host.vars)
                    .unwrap_or_else(|_| Value::from("VARIABLE IS NOT DEFINED!"));
                (name, value)
            }
            other => (json::py_str(other), other.clone()),
        };
        let mut out = map(vec![("changed", Value::Bool(false))]);
        out.insert(&name, value);
        return Ok(out);
    }
    let msg = args
        .get("msg")
        .cloned()
        .unwrap_or_else(|| Value::from("Hello world!"));
    Ok(map(vec![("changed", Value::Bool(false)), ("msg", msg)]))
}

/// `set_fact` (modules/core.py): the names and values the executor keeps for the rest of the
/// run; `cacheable` is not a name, and Ansible's boolean words become booleans.
pub fn set_fact(args: &Map) -> ModuleResult {
    let mut facts = Map::new();
    for (key, value) in args.iter() {
        if key == "cacheable" {
            continue;
        }
        let valid = key.chars().next().map_or(false, |c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ModuleFailure::new(format!(
                "The variable name '{}' is not valid. Variables must start with a letter or underscore character, \
                 and contain only letters, numbers and underscores.",
                key
            )));
        }
        let value = match value {
            Value::Str(text) if ["true", "yes"].contains(&text.to_lowercase().as_str()) => Value::Bool(true),
            Value::Str(text) if ["false", "no"].contains(&text.to_lowercase().as_str()) => Value::Bool(false),
            other => other.clone(),
        };
        facts.insert(key, value);
    }
    if facts.is_empty() {
        return Err(ModuleFailure::new(
            "No key/value pairs provided, at least one is required for this action to succeed",
        ));
    }
    Ok(map(vec![
        ("changed", Value::Bool(false)),
        ("ansible_facts", Value::Dict(facts)),
        ("_set_fact", Value::Bool(true)),
    ]))
}

/// `fail` (`core.fail`): a failed result with the given `msg` (any value), or Ansible's words.
pub fn fail(args: &Map) -> ModuleResult {
    let msg = args.get("msg").cloned().unwrap_or_else(|| Value::from("Failed as requested from task"));
    Ok(map(vec![("changed", Value::Bool(false)), ("failed", Value::Bool(true)), ("msg", msg)]))
}

/// `ping`; `data: crash` fails the way an exception in a Python module does.
pub fn ping(_ctx: &mut Ctx, args: &Map) -> ModuleResult {
    let data = args
        .get("data")
        .cloned()
        .unwrap_or_else(|| Value::from("pong"));
    if data == Value::from("crash") {
        return Ok(map(vec![
            ("failed", Value::Bool(true)),
            ("changed", Value::Bool(false)),
            ("msg", Value::from("Task failed: Module failed: boom")),
            (
                "exception",
                Value::from("Traceback (most recent call last):\n  (raised by the native runner's ping)\nException: boom\n"),
            ),
        ]));
    }
    Ok(map(vec![("changed", Value::Bool(false)), ("ping", data)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Scope;
    use crate::json::parse;

    #[test]
    fn set_fact_keeps_names_turns_boolean_words_into_booleans_and_checks_names() {
        let args = parse(r#"{"a": "Yes", "b": "no", "c": [1], "d": "word", "cacheable": true}"#)
            .unwrap()
            .as_dict()
            .unwrap()
            .clone();
        let result = set_fact(&args).unwrap();
        assert_eq!(
            json::to_string(result.get("ansible_facts").unwrap()),
            r#"{"a": true, "b": false, "c": [1], "d": "word"}"#
        );
        assert_eq!(result.get("_set_fact"), Some(&Value::Bool(true)));
        let bad = parse(r#"{"1x": 1}"#).unwrap().as_dict().unwrap().clone();
        assert!(set_fact(&bad).unwrap_err().msg.contains("The variable name '1x' is not valid"));
        let only = parse(r#"{"cacheable": true}"#).unwrap().as_dict().unwrap().clone();
        assert!(set_fact(&only).unwrap_err().msg.starts_with("No key/value pairs provided"));
    }

    fn with_ctx<T>(f: impl FnOnce(&mut Ctx, &Host) -> T, verbosity: i64) -> T {
        let empty = Map::new();
        let vars = parse(r#"{"r": {"rc": 3, "failed": true}}"#)
            .unwrap()
            .as_dict()
            .unwrap()
            .clone();
        let scope = Scope::new(vec![&vars]);
        let host = Host {
            vars: &scope,
            verbosity,
        };
        let mut ctx = Ctx {
            module: "x",
            check: false,
            diff: false,
            environment: &empty,
            files: &empty,
            warnings: vec![],
        };
        f(&mut ctx, &host)
    }

    fn args(text: &str) -> Map {
        parse(text).unwrap().as_dict().unwrap().clone()
    }

    fn out(m: &Map) -> String {
        crate::json::to_string(&Value::Dict(m.clone()))
    }

    const RC3: &str =
        r#"{"expr": "r.rc == 3", "ir": ["cmp", "==", ["attr", ["name", "r"], "rc"], ["lit", 3]]}"#;
    const RC4: &str =
        r#"{"expr": "r.rc == 4", "ir": ["cmp", "==", ["attr", ["name", "r"], "rc"], ["lit", 4]]}"#;
    const BAD: &str = r#"{"expr": "nope", "ir": ["name", "nope"]}"#;

    #[test]
    fn assert_results() {
        let ok = with_ctx(
            |c, h| assert_(c, &args(&format!(r#"{{"that": [{}]}}"#, RC3)), h),
            0,
        )
        .unwrap();
        assert_eq!(
            out(&ok),
            r#"{"changed": false, "msg": "All assertions passed"}"#
        );
        let a = args(&format!(
            r#"{{"that": [{}, {}], "msg": "no", "quiet": true}}"#,
            RC3, RC4
        ));
        let failed = with_ctx(|c, h| assert_(c, &a, h), 0).unwrap();
        assert_eq!(
            out(&failed),
            r#"{"changed": false, "failed": true, "assertion": "r.rc == 4", "evaluated_to": false, "msg": "no"}"#
        );
        let a = args(&format!(
            r#"{{"that": {}, "success_msg": "fine", "quiet": true}}"#,
            RC3
        ));
        let quiet = with_ctx(|c, h| assert_(c, &a, h), 0).unwrap();
        assert_eq!(
            out(&quiet),
            r#"{"changed": false, "msg": "fine", "_ansible_verbose_always": false}"#
        );
        let err = with_ctx(
            |c, h| assert_(c, &args(&format!(r#"{{"that": [{}]}}"#, BAD)), h),
            0,
        )
        .unwrap_err();
        assert_eq!(
            err.msg,
            "Task failed: Error while evaluating conditional: 'nope' is undefined"
        );
        assert_eq!(out(&err.result), r#"{}"#);
        let err = with_ctx(|c, h| assert_(c, &args("{}"), h), 0).unwrap_err();
        assert_eq!(err.msg, "conditional required in \"that\" string");
    }

    #[test]
    fn debug_results() {
        let r = with_ctx(|c, h| debug(c, &args("{}"), h), 0).unwrap();
        assert_eq!(out(&r), r#"{"changed": false, "msg": "Hello world!"}"#);
        let a = args(r#"{"var": {"expr": "r.rc", "ir": ["attr", ["name", "r"], "rc"]}}"#);
        assert_eq!(
            out(&with_ctx(|c, h| debug(c, &a, h), 0).unwrap()),
            r#"{"changed": false, "r.rc": 3}"#
        );
        let a = args(r#"{"var": {"expr": "nope", "ir": ["name", "nope"]}}"#);
        assert_eq!(
            out(&with_ctx(|c, h| debug(c, &a, h), 0).unwrap()),
            r#"{"changed": false, "nope": "VARIABLE IS NOT DEFINED!"}"#
        );
        let a = args(r#"{"msg": "x", "verbosity": "2"}"#);
        assert_eq!(
            out(&with_ctx(|c, h| debug(c, &a, h), 1).unwrap()),
            r#"{"changed": false, "skipped": true, "skipped_reason": "Verbosity threshold not met."}"#
        );
        assert_eq!(
            out(&with_ctx(|c, h| debug(c, &a, h), 2).unwrap()),
            r#"{"changed": false, "msg": "x"}"#
        );
        let err = with_ctx(|c, h| debug(c, &args(r#"{"msg": 1, "var": 2}"#), h), 0).unwrap_err();
        assert_eq!(err.msg, "parameters are mutually exclusive: msg|var");
    }

    #[test]
    fn ping_results() {
        let r = with_ctx(|c, _| ping(c, &args("{}")), 0).unwrap();
        assert_eq!(out(&r), r#"{"changed": false, "ping": "pong"}"#);
        let r = with_ctx(|c, _| ping(c, &args(r#"{"data": "crash"}"#)), 0).unwrap();
        assert_eq!(
            r.get("msg"),
            Some(&Value::from("Task failed: Module failed: boom"))
        );
    }
}
