//! The condition expression tree (docs/native.md, "COND"/"NODE") with the semantics of the
//! Python runtime's `expr._eval` and `Templar.condition`.
//!
//! Values follow Python's rules: truthiness, `==` across int/float/bool (`True == 1`), ordering
//! only between comparable types (else the TypeError text Python gives), `in` for strings,
//! lists and dict keys. Names are registered results, looked up in a `Scope`; an unknown name or
//! a missing key is an *undefined* value that fails when used (strict undefined), except under
//! the `defined`/`undefined` tests and the `default` filter. Where the Python evaluator hands an
//! expression over to Jinja2 (an attribute that is a Python method, say), this module fails with
//! a message saying so instead of guessing.

use crate::json::{float_repr, py_repr, py_str, type_name, Map, Value};
use std::cmp::Ordering;

/// Variables visible to an expression: layers of dicts, the last one wins.
pub struct Scope<'a> {
    layers: Vec<&'a Map>,
}

impl<'a> Scope<'a> {
    pub fn new(layers: Vec<&'a Map>) -> Scope<'a> {
        Scope { layers }
    }

    /// A scope with `layer` above this one's layers.
    pub fn with<'b>(&self, layer: &'b Map) -> Scope<'b>
    where
        'a: 'b,
    {
        let mut layers: Vec<&'b Map> = self.layers.clone();
        layers.push(layer);
        Scope { layers }
    }

    pub fn lookup(&self, name: &str) -> Option<&'a Value> {
        self.layers.iter().rev().find_map(|layer| layer.get(name))
    }
}

/// An evaluated value: defined, or undefined with the hint its use fails with.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Def(Value),
    Undef(String),
}

type Eval<T> = Result<T, String>;

/// The source text of a COND (what `false_condition` and error messages quote).
pub fn cond_text(cond: &Value) -> Value {
    match cond {
        Value::Dict(map) => map.get("expr").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// ansible-core 2.19's conditional: true/false, or its error: "Error while evaluating
/// conditional: 'x' is undefined" for an undefined name, "Conditional result (True) was derived
/// from value of type 'str' ..." for a result that is not a boolean (`Templar.condition`), any
/// other error as it is. A COND with `"allow_broken": true` (ansible.cfg's
/// ALLOW_BROKEN_CONDITIONALS) takes the result's truth instead; its `"origin"` (where the
/// value came from, the task's `origins`) is named in the broken-conditional message.
///
/// A COND may also be a bare bool (itself) or null (true), as the lowering writes them.
pub fn condition(cond: &Value, scope: &Scope) -> Result<bool, String> {
    let map = match cond {
        Value::Bool(b) => return Ok(*b),
        Value::Null => return Ok(true),
        Value::Dict(map) => map,
        other => return Err(format!("malformed condition {}", py_repr(other))),
    };
    let node = map.get("ir").unwrap_or(&Value::Null);
    let allow_broken = matches!(map.get("allow_broken"), Some(Value::Bool(true)));
    match evaluate(node, scope) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) if allow_broken => Ok(truthy(&other)),
        Ok(other) => Err(broken_conditional(&other, map.get("origin"))),
        Err(e) if is_undefined_error(&e) => Err(format!("Error while evaluating conditional: {}", e)),
        Err(e) => Err(e),
    }
}

/// ansible-core 2.19's words for a conditional whose result is not a boolean
/// (`templating.broken_conditional_message`), naming the value's `origin` ('<unknown>' for
/// None, which takes no origin in ansible-core, or when the lowering recorded none).
fn broken_conditional(value: &Value, origin: Option<&Value>) -> String {
    let origin = match (value, origin) {
        (Value::Null, _) => "<unknown>".to_string(),
        (_, Some(Value::Str(text))) => text.to_string(),
        _ => "<unknown>".to_string(),
    };
    format!(
        "Conditional result ({}) was derived from value of type '{}' at {}. \
         Conditionals must have a boolean result.",
        if truthy(value) { "True" } else { "False" },
        crate::json::type_name(value),
        py_repr(&Value::from(origin.as_str()))
    )
}

/// ansible-core 2.19's words for a missing attribute or key `name` of `obj` (its Marker's
/// hint); a falsy `name` (`l[0]`) keeps Jinja2's, as ansible-core does (runtime expr.py).
pub fn no_attribute(obj: &Value, name: &Value) -> String {
    if !truthy(name) {
        let shown = match obj {
            Value::Null => "None".to_string(),
            other => format!("{} object", type_name(other)),
        };
        let kind = if matches!(name, Value::Str(_)) { "attribute" } else { "element" };
        return format!("{} has no {} {}", shown, kind, py_repr(name));
    }
    format!("object of type '{}' has no attribute {}", type_name(obj), py_repr(name))
}

/// Whether an evaluation error is one of `Val::Undef`'s (Jinja2's UndefinedError in the
/// runtime): an undefined name, a missing attribute or element, `first` of an empty list.
pub fn is_undefined_error(e: &str) -> bool {
    e.ends_with(" is undefined")
        || (e.starts_with("object of type '") && e.contains("' has no attribute "))
        || e.starts_with("None has no ")
        || (e.contains(" object has no element ") || e.ends_with(" object has no attribute ''"))
        || (e.starts_with("No ") && e.ends_with(" item, sequence was empty."))
}

/// The value of a NODE; using an undefined value (or ending with one) is an error.
pub fn evaluate(node: &Value, scope: &Scope) -> Eval<Value> {
    use_val(eval(node, scope)?)
}

fn use_val(value: Val) -> Eval<Value> {
    match value {
        Val::Def(v) => Ok(v),
        Val::Undef(hint) => Err(hint),
    }
}

fn eval_use(node: &Value, scope: &Scope) -> Eval<Value> {
    use_val(eval(node, scope)?)
}

fn eval(node: &Value, scope: &Scope) -> Eval<Val> {
    let parts = match node.as_list() {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err(malformed(node)),
    };
    let op = parts[0].as_str().unwrap_or("");
    let arg = |i: usize| parts.get(i).ok_or_else(|| malformed(node));
    match op {
        "lit" => Ok(Val::Def(arg(1)?.clone())),
        "name" => {
            // ["name", X, DEFAULT]: X is set by the run, and until it is, it is the plan's
            // variable DEFAULT (a NODE) stands for (executor._task_scope's layers)
            let name = arg(1)?.as_str().ok_or_else(|| malformed(node))?;
            match (scope.lookup(name), parts.get(2)) {
                (Some(v), _) => Ok(Val::Def(v.clone())),
                (None, Some(default)) => eval(default, scope),
                (None, None) => Ok(Val::Undef(format!("'{}' is undefined", name))),
            }
        }
        "attr" => {
            let name = arg(2)?.as_str().ok_or_else(|| malformed(node))?;
            get_attr(eval(arg(1)?, scope)?, name)
        }
        "item" => {
            let obj = eval(arg(1)?, scope)?;
            get_item(obj, eval_use(arg(2)?, scope)?)
        }
        "list" => {
            let items = arg(1)?.as_list().ok_or_else(|| malformed(node))?;
            let values: Eval<Vec<Value>> = items.iter().map(|n| eval_use(n, scope)).collect();
            Ok(Val::Def(Value::List(values?)))
        }
        "or" | "and" => {
            let left = eval_use(arg(1)?, scope)?;
            if truthy(&left) == (op == "or") {
                Ok(Val::Def(left))
            } else {
                Ok(Val::Def(eval_use(arg(2)?, scope)?))
            }
        }
        "not" => Ok(Val::Def(Value::Bool(!truthy(&eval_use(arg(1)?, scope)?)))),
        "cmp" => {
            let cmp = arg(1)?.as_str().ok_or_else(|| malformed(node))?;
            let a = eval_use(arg(2)?, scope)?;
            let b = eval_use(arg(3)?, scope)?;
            Ok(Val::Def(Value::Bool(compare(cmp, &a, &b)?)))
        }
        "chain" => {
            // ["chain", first, [[op, operand], ...]]: Python's `a < b < c`, as Jinja2 compiles
            // it: each operand evaluated once, and only while the chain holds
            let mut left = eval_use(arg(1)?, scope)?;
            for link in arg(2)?.as_list().ok_or_else(|| malformed(node))? {
                let (cmp, right) = match link.as_list().map(Vec::as_slice) {
                    Some([Value::Str(cmp), right]) => (cmp, right),
                    _ => return Err(malformed(node)),
                };
                let right = eval_use(right, scope)?;
                if !compare(cmp, &left, &right)? {
                    return Ok(Val::Def(Value::Bool(false)));
                }
                left = right;
            }
            Ok(Val::Def(Value::Bool(true)))
        }
        "add" => {
            let (a, b) = (eval_use(arg(1)?, scope)?, eval_use(arg(2)?, scope)?);
            add(&a, &b).map(Val::Def)
        }
        "concat" => {
            // Jinja2's `~` (str_join): str() of each operand
            let mut text = String::new();
            for n in arg(1)?.as_list().ok_or_else(|| malformed(node))? {
                text.push_str(&crate::modules::files::py_str(&eval_use(n, scope)?));
            }
            Ok(Val::Def(Value::Str(text)))
        }
        "in" => {
            let item = eval_use(arg(1)?, scope)?;
            let seq = eval_use(arg(2)?, scope)?;
            Ok(Val::Def(Value::Bool(contains(&seq, &item)?)))
        }
        "call" => {
            let name = arg(2)?.as_str().ok_or_else(|| malformed(node))?;
            let obj = eval_use(arg(1)?, scope)?;
            let items = arg(3)?.as_list().ok_or_else(|| malformed(node))?;
            let args: Eval<Vec<Value>> = items.iter().map(|n| eval_use(n, scope)).collect();
            call_method(&obj, name, &args?).map(Val::Def)
        }
        "slice" => {
            // ["slice", obj, start|null, stop|null]: Python's obj[start:stop] of a list or a str
            let obj = eval_use(arg(1)?, scope)?;
            let bound = |i: usize| -> Eval<Option<i64>> {
                match parts.get(i) {
                    None | Some(Value::Null) => Ok(None),
                    Some(n) => match eval_use(n, scope)? {
                        Value::Null => Ok(None),
                        Value::Int(i) => Ok(Some(i)),
                        Value::Bool(b) => Ok(Some(b as i64)),
                        _ => Err("slice indices must be integers or None or have an __index__ method".to_string()),
                    },
                }
            };
            let (start, stop) = (bound(2)?, bound(3)?);
            let range = |len: usize| {
                let len = len as i64;
                let clamp = |i: Option<i64>, default: i64| match i {
                    None => default,
                    Some(i) if i < 0 => i.saturating_add(len).max(0),
                    Some(i) => i.min(len),
                };
                let (a, b) = (clamp(start, 0) as usize, clamp(stop, len) as usize);
                (a, b.max(a))
            };
            match obj {
                Value::List(items) => {
                    let (a, b) = range(items.len());
                    Ok(Val::Def(Value::List(items[a..b].to_vec())))
                }
                Value::Str(text) => {
                    let chars: Vec<char> = text.chars().collect();
                    let (a, b) = range(chars.len());
                    Ok(Val::Def(Value::Str(chars[a..b].iter().collect())))
                }
                other => Err(unsupported(format!("a slice of a {} object", type_name(&other)))),
            }
        }
        "re" => {
            // ["re", search|match|fullmatch, value, tree]: the regex tests (filters._regex_test)
            // with the pattern (and its flags) parsed by the controller; the value as str()
            let kind = arg(1)?.as_str().ok_or_else(|| malformed(node))?;
            let text = crate::modules::files::py_str(&eval_use(arg(2)?, scope)?);
            let re = crate::regex::Regex::from_tree(arg(3)?)?;
            Ok(Val::Def(Value::Bool(re.is_match(&text, kind)?)))
        }
        "filter" | "test" => {
            let name = arg(1)?.as_str().ok_or_else(|| malformed(node))?;
            let value = eval(arg(2)?, scope)?;
            let args = arg(3)?.as_list().ok_or_else(|| malformed(node))?;
            let kwargs = arg(4)?.as_dict().ok_or_else(|| malformed(node))?;
            if op == "test" && (name == "defined" || name == "undefined") {
                let defined = matches!(value, Val::Def(_));
                return Ok(Val::Def(Value::Bool(defined == (name == "defined"))));
            }
            let call = Call::new(name, args, kwargs, scope)?;
            if op == "filter" {
                filter(name, value, &call)
            } else {
                test(name, use_val(value)?, &call).map(|b| Val::Def(Value::Bool(b)))
            }
        }
        _ => Err(malformed(node)),
    }
}

/// `obj.name(*args)` for the str methods the compiler lets through (startswith, endswith
/// with one argument), as Python answers them.
fn call_method(obj: &Value, name: &str, args: &[Value]) -> Eval<Value> {
    match (obj, name, args) {
        (Value::Str(text), "startswith" | "endswith", [Value::Str(affix)]) => Ok(Value::Bool(if name == "startswith" {
            text.starts_with(affix.as_str())
        } else {
            text.ends_with(affix.as_str())
        })),
        (Value::Str(text), "strip", []) | (Value::Str(text), "strip", [Value::Null]) => Ok(Value::Str(text.trim_matches(py_isspace).to_string())),
        (Value::Str(text), "strip", [Value::Str(chars)]) => Ok(Value::Str(text.trim_matches(|c| chars.contains(c)).to_string())),
        (Value::Str(_), "strip", [other]) => Err(format!("strip arg must be None or str, not {}", type_name(other))),
        (Value::Str(text), "split", _) if args.len() <= 2 => {
            let maxsplit = match args.get(1) {
                None => -1,
                Some(Value::Int(n)) => *n,
                Some(Value::Bool(b)) => *b as i64,
                Some(other) => return Err(format!("'{}' object cannot be interpreted as an integer", type_name(other))),
            };
            match args.first() {
                None | Some(Value::Null) => Ok(py_split_whitespace(text, maxsplit)),
                Some(Value::Str(sep)) if sep.is_empty() => Err("empty separator".to_string()),
                Some(Value::Str(sep)) => {
                    let parts: Vec<Value> = if maxsplit < 0 {
                        text.split(sep.as_str()).map(Value::from).collect()
                    } else {
                        text.splitn(maxsplit as usize + 1, sep.as_str()).map(Value::from).collect()
                    };
                    Ok(Value::List(parts))
                }
                Some(other) => Err(format!("must be str or None, not {}", type_name(other))),
            }
        }
        (Value::Str(text), "splitlines", []) => Ok(py_splitlines(text)),
        (Value::Str(_), "startswith" | "endswith", [other]) => Err(format!(
            "{} first arg must be str or a tuple of str, not {}",
            name,
            type_name(other)
        )),
        (Value::Dict(map), _, _) if map.contains_key(name) => Err(unsupported(format!("calling the key '{}'", name))),
        _ if has_python_attribute(obj, name) => Err(unsupported(format!("'{}' of a {} object", name, type_name(obj)))),
        _ => Err(no_attribute(obj, &Value::from(name))),
    }
}

/// Python's `text.splitlines()`: split at every line boundary Python's str knows (`\r\n` as
/// one), the boundaries dropped, no empty part after a last boundary.
fn py_splitlines(text: &str) -> Value {
    Value::List(py_splitlines_of(text).into_iter().map(Value::Str).collect())
}

/// `text.splitlines()` as strings.
pub fn py_splitlines_of(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(|c| matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}')) {
            None => {
                parts.push(rest.to_string());
                break;
            }
            Some(i) => {
                parts.push(rest[..i].to_string());
                let width = if rest[i..].starts_with("\r\n") { 2 } else { rest[i..].chars().next().map_or(1, char::len_utf8) };
                rest = &rest[i + width..];
            }
        }
    }
    parts
}

/// Python's `text.split(None, maxsplit)`: runs of whitespace separate, no empty parts.
fn py_split_whitespace(text: &str, maxsplit: i64) -> Value {
    let mut parts = Vec::new();
    let mut rest = text.trim_start_matches(py_isspace);
    while !rest.is_empty() {
        if maxsplit >= 0 && parts.len() as i64 == maxsplit {
            parts.push(Value::from(rest));
            break;
        }
        let end = rest.find(py_isspace).unwrap_or(rest.len());
        parts.push(Value::from(&rest[..end]));
        rest = rest[end..].trim_start_matches(py_isspace);
    }
    Value::List(parts)
}

fn malformed(node: &Value) -> String {
    format!("malformed expression tree {}", crate::json::to_string(node))
}

/// Python's "X not supported" for what `expr.py` leaves to Jinja2 and the runner cannot do.
fn unsupported(what: String) -> String {
    format!(
        "{} needs Jinja2, which the native runner does not have; hint: use --format pyz",
        what
    )
}

// ------------------------------------------------------------------------------------- lookup

/// The names Python objects of each type have as attributes (`hasattr`): `expr.py` hands those
/// to Jinja2, which returns the bound method.
fn python_attributes(value: &Value) -> &'static [&'static str] {
    match value {
        Value::Str(_) => &[
            "capitalize",
            "casefold",
            "center",
            "count",
            "encode",
            "endswith",
            "expandtabs",
            "find",
            "format",
            "format_map",
            "index",
            "isalnum",
            "isalpha",
            "isascii",
            "isdecimal",
            "isdigit",
            "isidentifier",
            "islower",
            "isnumeric",
            "isprintable",
            "isspace",
            "istitle",
            "isupper",
            "join",
            "ljust",
            "lower",
            "lstrip",
            "maketrans",
            "partition",
            "removeprefix",
            "removesuffix",
            "replace",
            "rfind",
            "rindex",
            "rjust",
            "rpartition",
            "rsplit",
            "rstrip",
            "split",
            "splitlines",
            "startswith",
            "strip",
            "swapcase",
            "title",
            "translate",
            "upper",
            "zfill",
        ],
        Value::Int(_) | Value::Bool(_) => &[
            "as_integer_ratio",
            "bit_count",
            "bit_length",
            "conjugate",
            "denominator",
            "from_bytes",
            "imag",
            "numerator",
            "real",
            "to_bytes",
        ],
        Value::Float(_) => &[
            "as_integer_ratio",
            "conjugate",
            "fromhex",
            "hex",
            "imag",
            "is_integer",
            "real",
        ],
        Value::List(_) => &[
            "append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove",
            "reverse", "sort",
        ],
        Value::Dict(_) => &[
            "clear",
            "copy",
            "fromkeys",
            "get",
            "items",
            "keys",
            "pop",
            "popitem",
            "setdefault",
            "update",
            "values",
        ],
        Value::Null => &[],
    }
}

fn has_python_attribute(value: &Value, name: &str) -> bool {
    (name.starts_with("__") && name.ends_with("__")) || python_attributes(value).contains(&name)
}

fn get_attr(obj: Val, name: &str) -> Eval<Val> {
    let obj = match obj {
        Val::Undef(_) => return Ok(obj),
        Val::Def(v) => v,
    };
    if let Value::Dict(map) = &obj {
        if let Some(v) = map.get(name) {
            return Ok(Val::Def(v.clone()));
        }
    }
    if has_python_attribute(&obj, name) {
        return Err(unsupported(format!(
            "'{}' of a {} object",
            name,
            type_name(&obj)
        )));
    }
    Ok(Val::Undef(no_attribute(&obj, &Value::from(name))))
}

fn get_item(obj: Val, key: Value) -> Eval<Val> {
    let value = match &obj {
        Val::Undef(_) => return Ok(obj),
        Val::Def(v) => v,
    };
    let found = match (value, &key) {
        (Value::Dict(map), Value::Str(k)) => map.get(k).cloned(),
        (Value::List(items), Value::Int(_) | Value::Bool(_)) => {
            index(items.len(), &key).map(|i| items[i].clone())
        }
        (Value::Str(s), Value::Int(_) | Value::Bool(_)) => {
            let chars: Vec<char> = s.chars().collect();
            index(chars.len(), &key).map(|i| Value::Str(chars[i].to_string()))
        }
        _ => None,
    };
    match (found, &key) {
        (Some(v), _) => Ok(Val::Def(v)),
        (None, Value::Str(k)) => get_attr(obj, k),
        (None, _) => Ok(Val::Undef(no_attribute(value, &key))),
    }
}

/// Python's index into a sequence of `len` (negative counts from the end).
fn index(len: usize, key: &Value) -> Option<usize> {
    let i = match key {
        Value::Int(i) => *i,
        Value::Bool(b) => *b as i64,
        _ => return None,
    };
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    if i >= 0 && (i as usize) < len {
        Some(i as usize)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------- Python values

/// Python's `bool(value)`.
pub use crate::json::truthy;

/// Ansible's `bool` filter (`filters.to_bool`).
fn to_bool(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Int(i) => *i == 1,
        Value::Float(f) => *f == 1.0,
        other => {
            let text = py_str(other).trim_matches(py_isspace).to_lowercase();
            ["yes", "on", "1", "true", "y", "t"].contains(&text.as_str())
        }
    }
}

/// Python's `str.isspace` for one character.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        "nan".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        float_repr(f)
    }
}

/// A number as Python sees it (bool is an int).
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

fn as_num(value: &Value) -> Option<Num> {
    match value {
        Value::Bool(b) => Some(Num::I(*b as i64)),
        Value::Int(i) => Some(Num::I(*i)),
        Value::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (Num::F(x), Num::F(y)) => x.partial_cmp(&y),
        (Num::I(x), Num::F(y)) => int_float_cmp(x, y),
        (Num::F(x), Num::I(y)) => int_float_cmp(y, x).map(Ordering::reverse),
    }
}

/// Exact int/float comparison, as Python does it.
fn int_float_cmp(i: i64, f: f64) -> Option<Ordering> {
    match (i as f64).partial_cmp(&f)? {
        Ordering::Equal => Some((i as i128).cmp(&(f as i128))),
        other => Some(other),
    }
}

/// Python's `a == b`.
fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return num_cmp(x, y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).map_or(false, |w| py_eq(v, w)))
        }
        _ => false,
    }
}

/// Python's comparison `a <op> b` for `== != < <= > >=`.
fn compare(op: &str, a: &Value, b: &Value) -> Eval<bool> {
    match op {
        "==" => return Ok(py_eq(a, b)),
        "!=" => return Ok(!py_eq(a, b)),
        "<" | "<=" | ">" | ">=" => {}
        _ => return Err(format!("unknown comparison operator '{}'", op)),
    }
    let ordering = match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::List(x), Value::List(y)) => {
            return match x.iter().zip(y).find(|(p, q)| !py_eq(p, q)) {
                Some((p, q)) => compare(op, p, q),
                None => Ok(holds(op, Some(x.len().cmp(&y.len())))),
            };
        }
        _ => match (as_num(a), as_num(b)) {
            (Some(x), Some(y)) => num_cmp(x, y),
            _ => {
                return Err(format!(
                    "'{}' not supported between instances of '{}' and '{}'",
                    op,
                    type_name(a),
                    type_name(b)
                ))
            }
        },
    };
    Ok(holds(op, ordering))
}

/// Python's `a + b` over JSON values: numbers (a bool counts as an int), text, lists.
fn add(a: &Value, b: &Value) -> Eval<Value> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => return Ok(Value::Str(format!("{}{}", x, y))),
        (Value::List(x), Value::List(y)) => return Ok(Value::List(x.iter().chain(y).cloned().collect())),
        _ => {}
    }
    match (as_num(a), as_num(b)) {
        (Some(Num::I(x)), Some(Num::I(y))) => x.checked_add(y).map(Value::Int).ok_or_else(|| {
            format!("{} + {} is beyond the native runner's 64-bit integers (Python's are unbounded); hint: use --format pyz", x, y)
        }),
        (Some(Num::F(x)), Some(Num::F(y))) => Ok(Value::Float(x + y)),
        (Some(Num::I(x)), Some(Num::F(y))) | (Some(Num::F(y)), Some(Num::I(x))) => Ok(Value::Float(x as f64 + y)),
        _ => Err(format!("unsupported operand type(s) for +: '{}' and '{}'", type_name(a), type_name(b))),
    }
}

fn holds(op: &str, ordering: Option<Ordering>) -> bool {
    match (op, ordering) {
        (_, None) => false,
        ("<", Some(o)) => o == Ordering::Less,
        ("<=", Some(o)) => o != Ordering::Greater,
        (">", Some(o)) => o == Ordering::Greater,
        (_, Some(o)) => o != Ordering::Less,
    }
}

/// Python's `item in seq`.
fn contains(seq: &Value, item: &Value) -> Eval<bool> {
    match seq {
        Value::Str(s) => match item {
            Value::Str(needle) => Ok(s.contains(needle.as_str())),
            other => Err(format!(
                "'in <string>' requires string as left operand, not {}",
                type_name(other)
            )),
        },
        Value::List(items) => Ok(items.iter().any(|x| py_eq(x, item))),
        Value::Dict(map) => match item {
            Value::Str(key) => Ok(map.contains_key(key)),
            Value::List(_) | Value::Dict(_) => {
                Err(format!("unhashable type: '{}'", type_name(item)))
            }
            _ => Ok(false),
        },
        other => Err(format!(
            "argument of type '{}' is not iterable",
            type_name(other)
        )),
    }
}

/// Python's `len(value)`.
fn py_len(value: &Value) -> Eval<i64> {
    match value {
        Value::Str(s) => Ok(s.chars().count() as i64),
        Value::List(items) => Ok(items.len() as i64),
        Value::Dict(map) => Ok(map.len() as i64),
        other => Err(format!(
            "object of type '{}' has no len()",
            type_name(other)
        )),
    }
}

/// Python's `list(value)` for iterables (a dict gives its keys, a string its characters).
fn py_iter(value: &Value) -> Eval<Vec<Value>> {
    match value {
        Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
        Value::List(items) => Ok(items.clone()),
        Value::Dict(map) => Ok(map.iter().map(|(k, _)| Value::Str(k.clone())).collect()),
        other => Err(format!("'{}' object is not iterable", type_name(other))),
    }
}

// ---------------------------------------------------------------------------- filters, tests

/// Evaluated arguments of a filter or test call.
struct Call {
    name: String,
    args: Vec<Value>,
    kwargs: Map,
}

impl Call {
    fn new(name: &str, args: &[Value], kwargs: &Map, scope: &Scope) -> Eval<Call> {
        let args: Eval<Vec<Value>> = args.iter().map(|n| eval_use(n, scope)).collect();
        let mut values = Map::new();
        for (key, node) in kwargs.iter() {
            values.insert(key, eval_use(node, scope)?);
        }
        Ok(Call {
            name: name.to_string(),
            args: args?,
            kwargs: values,
        })
    }

    /// The parameters after the value, bound like a Python call (`None` = default).
    fn bind(&self, params: &[&str]) -> Eval<Vec<Option<Value>>> {
        if self.args.len() > params.len() {
            return Err(format!(
                "{}() takes {} positional arguments after the value but {} were given",
                self.name,
                params.len(),
                self.args.len()
            ));
        }
        let mut out: Vec<Option<Value>> = params.iter().map(|_| None).collect();
        for (slot, value) in out.iter_mut().zip(&self.args) {
            *slot = Some(value.clone());
        }
        for (key, value) in self.kwargs.iter() {
            let i = params.iter().position(|p| p == key).ok_or_else(|| {
                format!(
                    "{}() got an unexpected keyword argument '{}'",
                    self.name, key
                )
            })?;
            if out[i].is_some() {
                return Err(format!(
                    "{}() got multiple values for argument '{}'",
                    self.name, key
                ));
            }
            out[i] = Some(value.clone());
        }
        Ok(out)
    }
}

fn filter(name: &str, value: Val, call: &Call) -> Eval<Val> {
    if name == "default" || name == "d" {
        let p = call.bind(&["default_value", "boolean"])?;
        let boolean = p[1].as_ref().map_or(false, truthy);
        let fallback = p[0].clone().unwrap_or_else(|| Value::Str(String::new()));
        return Ok(match value {
            Val::Def(v) if !boolean || truthy(&v) => Val::Def(v),
            _ => Val::Def(fallback),
        });
    }
    let value = use_val(value)?;
    let out = match name {
        "bool" => {
            call.bind(&[])?;
            Value::Bool(to_bool(&value))
        }
        "int" => {
            let p = call.bind(&["default", "base"])?;
            let default = p[0].clone().unwrap_or(Value::Int(0));
            to_int(&value, default, p[1].clone().unwrap_or(Value::Int(10)))?
        }
        "float" => {
            let p = call.bind(&["default"])?;
            to_float(&value)
                .map(Value::Float)
                .unwrap_or_else(|| p[0].clone().unwrap_or(Value::Float(0.0)))
        }
        "length" | "count" => {
            call.bind(&[])?;
            Value::Int(py_len(&value)?)
        }
        "lower" | "upper" | "string" => {
            call.bind(&[])?;
            let text = py_str(&value);
            Value::Str(match name {
                "lower" => text.to_lowercase(),
                "upper" => text.to_uppercase(),
                _ => text,
            })
        }
        "trim" => {
            let p = call.bind(&["chars"])?;
            Value::Str(trim(&py_str(&value), p[0].as_ref())?)
        }
        "first" | "last" => {
            call.bind(&[])?;
            let items = py_iter(&value)?;
            let picked = if name == "first" {
                items.first()
            } else {
                items.last()
            };
            return Ok(match picked {
                Some(v) => Val::Def(v.clone()),
                None => Val::Undef(format!("No {} item, sequence was empty.", name)),
            });
        }
        "basename" => {
            call.bind(&[])?;
            match &value {
                Value::Str(path) => Value::from(&path[path.rfind('/').map_or(0, |i| i + 1)..]),
                other => return Err(format!("expected str, bytes or os.PathLike object, not {}", type_name(other))),
            }
        }
        "expanduser" => {
            call.bind(&[])?;
            match &value {
                Value::Str(path) => Value::from(crate::paths::expanduser(path).as_str()),
                other => return Err(format!("expected str, bytes or os.PathLike object, not {}", type_name(other))),
            }
        }
        "split" => {
            let p = call.bind(&["sep", "maxsplit"])?;
            let maxsplit = match &p[1] {
                None => -1,
                Some(Value::Int(n)) => *n,
                Some(other) => return Err(format!("'{}' object cannot be interpreted as an integer", type_name(other))),
            };
            let parts = match &p[0] {
                None | Some(Value::Null) => split_whitespace(&py_str(&value), maxsplit),
                Some(Value::Str(sep)) if sep.is_empty() => return Err("empty separator".to_string()),
                Some(Value::Str(sep)) => split_on(&py_str(&value), sep, maxsplit),
                Some(other) => return Err(format!("must be str or None, not {}", type_name(other))),
            };
            Value::List(parts.into_iter().map(Value::Str).collect())
        }
        _ => return Err(unsupported(format!("the filter '{}'", name))),
    };
    Ok(Val::Def(out))
}

/// Python's `text.split(sep, maxsplit)` with a separator.
fn split_on(text: &str, sep: &str, maxsplit: i64) -> Vec<String> {
    if maxsplit < 0 {
        return text.split(sep).map(str::to_string).collect();
    }
    text.splitn(maxsplit as usize + 1, sep).map(str::to_string).collect()
}

/// Python's `text.split(None, maxsplit)`: runs of whitespace, none at either end.
fn split_whitespace(text: &str, maxsplit: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches(py_isspace);
    while !rest.is_empty() {
        if maxsplit >= 0 && out.len() as i64 == maxsplit {
            out.push(rest.to_string());
            break;
        }
        let end = rest.find(py_isspace).unwrap_or(rest.len());
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start_matches(py_isspace);
    }
    out
}

fn trim(text: &str, chars: Option<&Value>) -> Eval<String> {
    Ok(match chars {
        None | Some(Value::Null) => text.trim_matches(py_isspace).to_string(),
        Some(Value::Str(set)) => text.trim_matches(|c| set.contains(c)).to_string(),
        Some(other) => {
            return Err(format!(
                "strip arg must be None or str, not {}",
                type_name(other)
            ))
        }
    })
}

/// The `int` filter (`expr._int`): `int(value, base)` for strings, else `int(value)`,
/// then `int(float(value))`, else `default`.
fn to_int(value: &Value, default: Value, base: Value) -> Eval<Value> {
    let direct = match value {
        // a bad base is a ValueError/TypeError, which falls back to int(float(value))
        Value::Str(s) => match base {
            Value::Int(b) if b == 0 || (2..=36).contains(&b) => parse_int(s, b as u32),
            Value::Bool(false) => parse_int(s, 0),
            _ => None,
        },
        Value::Bool(b) => Some(*b as i64),
        Value::Int(i) => Some(*i),
        Value::Float(f) => return float_to_int(*f).map(|v| v.unwrap_or(default)),
        _ => None,
    };
    if let Some(i) = direct {
        return Ok(Value::Int(i));
    }
    match to_float(value) {
        Some(f) => float_to_int(f).map(|v| v.unwrap_or(default)),
        None => Ok(default),
    }
}

/// Python's `int(f)`: NaN is a ValueError (the filter's default), infinity an OverflowError.
fn float_to_int(f: f64) -> Eval<Option<Value>> {
    if f.is_nan() {
        return Ok(None);
    }
    if f.is_infinite() {
        return Err("cannot convert float infinity to integer".to_string());
    }
    let t = f.trunc();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
        Ok(Some(Value::Int(t as i64)))
    } else {
        Err(format!(
            "the integer {} is out of the native runner's range",
            py_float_repr(t)
        ))
    }
}

/// Python's `int(text, base)`: surrounding whitespace, a sign, a base prefix, underscores.
fn parse_int(text: &str, base: u32) -> Option<i64> {
    let s = text.trim_matches(py_isspace);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = s.to_ascii_lowercase();
    let prefixed = |p: &str, b: u32| (base == b || base == 0) && lower.starts_with(p);
    let (base, digits) = if prefixed("0x", 16) {
        (16, &s[2..])
    } else if prefixed("0o", 8) {
        (8, &s[2..])
    } else if prefixed("0b", 2) {
        (2, &s[2..])
    } else if base == 0 {
        if s.len() > 1 && s.starts_with('0') && !s.bytes().all(|b| b == b'0' || b == b'_') {
            return None;
        }
        (10, s)
    } else {
        (base, s)
    };
    // after a prefix, Python allows one underscore before the first digit
    let digits = if digits.len() < s.len() {
        digits.strip_prefix('_').unwrap_or(digits)
    } else {
        digits
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut out: i64 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = c.to_digit(base)? as i64;
        out = out.checked_mul(base as i64)?.checked_add(d)?;
    }
    Some(if negative { -out } else { out })
}

/// Python's `float(value)`, or None where it raises.
fn to_float(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(*b as i64 as f64),
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => parse_float(s),
        _ => None,
    }
}

fn parse_float(text: &str) -> Option<f64> {
    let s = text.trim_matches(py_isspace);
    let word = s.trim_start_matches(&['+', '-'][..]).to_ascii_lowercase();
    if ["inf", "infinity", "nan"].contains(&word.as_str()) {
        return s.to_ascii_lowercase().parse().ok();
    }
    // underscores only between digits, as Python allows
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let ok = i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).map_or(false, u8::is_ascii_digit);
            if !ok {
                return None;
            }
        }
    }
    let cleaned: String = s.chars().filter(|c| *c != '_').collect();
    if !cleaned
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    cleaned.parse().ok()
}

fn test(name: &str, value: Value, call: &Call) -> Eval<bool> {
    let result_test = |field: &str, absent: bool| -> Eval<bool> {
        call.bind(&[])?;
        let map = result_dict(&value, field)?;
        Ok(map.get(field).map_or(absent, to_bool))
    };
    match name {
        "none" | "number" | "string" | "mapping" | "boolean" | "true" | "false" => {
            call.bind(&[])?;
            Ok(match name {
                "none" => value.is_null(),
                "number" => matches!(value, Value::Int(_) | Value::Float(_)),
                "string" => matches!(value, Value::Str(_)),
                "mapping" => matches!(value, Value::Dict(_)),
                "boolean" => matches!(value, Value::Bool(_)),
                "true" => value == Value::Bool(true),
                _ => value == Value::Bool(false),
            })
        }
        "in" => {
            let p = call.bind(&["seq"])?;
            let seq = p[0].as_ref().ok_or_else(|| missing(name, "seq"))?;
            contains(seq, &value)
        }
        "contains" => {
            // Jinja2's `seq is contains(value)`: `value in seq`
            let p = call.bind(&["value"])?;
            let item = p[0].as_ref().ok_or_else(|| missing(name, "value"))?;
            contains(&value, item)
        }
        "eq" | "ne" | "equalto" => {
            let p = call.bind(&["b"])?;
            let other = p[0].as_ref().ok_or_else(|| missing(name, "b"))?;
            Ok(py_eq(&value, other) == (name != "ne"))
        }
        "failed" | "failure" => result_test("failed", false),
        "succeeded" | "success" | "successful" => {
            call.bind(&[])?;
            let map = result_dict(&value, "failed")?;
            Ok(!map.get("failed").map_or(false, to_bool))
        }
        "changed" | "change" => {
            call.bind(&[])?;
            Ok(changed(result_dict(&value, "changed")?))
        }
        "skipped" | "skip" => result_test("skipped", false),
        "finished" => result_test("finished", true),
        "timedout" => {
            // filters' timedout: bool((r.get("timedout") or {}).get("period"))
            call.bind(&[])?;
            match result_dict(&value, "timedout")?.get("timedout") {
                Some(Value::Dict(detail)) => Ok(detail.get("period").map_or(false, truthy)),
                Some(other) if truthy(other) => Err(unsupported(format!("a timedout that is a {}", type_name(other)))),
                _ => Ok(false),
            }
        }
        "truthy" | "falsy" => {
            let p = call.bind(&["convert_bool"])?;
            let convert = p[0].as_ref().map_or(false, truthy);
            let t = if convert {
                to_bool(&value)
            } else {
                truthy(&value)
            };
            Ok(t == (name == "truthy"))
        }
        _ => Err(unsupported(format!("the test '{}'", name))),
    }
}

fn missing(name: &str, param: &str) -> String {
    format!(
        "{}() missing 1 required positional argument: '{}'",
        name, param
    )
}

fn result_dict<'v>(value: &'v Value, name: &str) -> Eval<&'v Map> {
    value.as_dict().ok_or_else(|| {
        format!(
            "The '{}' test expects a dictionary (a registered result)",
            name
        )
    })
}

/// `filters.changed`: the result's `changed`, else whether any loop item changed.
fn changed(result: &Map) -> bool {
    if let Some(v) = result.get("changed") {
        return to_bool(v);
    }
    let items = result.get("results").and_then(Value::as_list);
    items.map_or(false, |items| {
        items
            .iter()
            .filter_map(Value::as_dict)
            .any(|r| r.get("changed").map_or(false, to_bool))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn vars() -> Map {
        let v = parse(
            r#"{"r": {"rc": 0, "stdout": "hello\nworld", "changed": true, "failed": false,
                      "stdout_lines": ["hello", "world"], "results": []},
                "l": {"results": [{"changed": false}, {"changed": true, "skipped": false}]},
                "n": {"x": null, "num": "4\n", "items": [1, 2, 3]},
                "fact": "r", "fact_word": " Yes ", "fact_expr": "r.rc == 0"}"#,
        )
        .unwrap();
        v.as_dict().unwrap().clone()
    }

    fn run(ir: &str) -> Result<Value, String> {
        let map = vars();
        evaluate(&parse(ir).unwrap(), &Scope::new(vec![&map]))
    }

    #[test]
    fn slices_splitlines_and_expanduser_as_python() {
        let list = |items: &[&str]| Ok(Value::List(items.iter().map(|s| Value::from(*s)).collect()));
        assert_eq!(run(r#"["call", ["lit", "a\nb\r\nc\r\rd\n"], "splitlines", []]"#), list(&["a", "b", "c", "", "d"]));
        assert_eq!(run(r#"["call", ["lit", ""], "splitlines", []]"#), list(&[]));
        assert_eq!(run(r#"["slice", ["lit", ["a", "b", "c"]], null, ["lit", -1]]"#), list(&["a", "b"]));
        assert_eq!(run(r#"["slice", ["lit", ["a", "b", "c"]], ["lit", -2], null]"#), list(&["b", "c"]));
        assert_eq!(run(r#"["slice", ["lit", ["a"]], ["lit", 5], ["lit", -9]]"#), list(&[]));
        assert_eq!(run(r#"["slice", ["lit", "héllo"], ["lit", 1], ["lit", 3]]"#), Ok(Value::from("él")));
        assert!(run(r#"["slice", ["lit", "x"], ["lit", "a"], null]"#).is_err());
        let home = std::env::var("HOME").unwrap();
        let want = format!("{}/x", home.trim_end_matches('/'));
        assert_eq!(run(r#"["filter", "expanduser", ["lit", "~/x"], [], {}]"#), Ok(Value::from(want.as_str())));
        assert_eq!(run(r#"["filter", "expanduser", ["lit", "/y/~"], [], {}]"#), Ok(Value::from("/y/~")));
        assert!(run(r#"["filter", "expanduser", ["lit", 3], [], {}]"#).is_err());
    }

    #[test]
    fn integers_beyond_64_bits_fail_rather_than_wrap_or_default() {
        assert!(run(r#"["add", ["lit", 9223372036854775807], ["lit", 1]]"#).unwrap_err().contains("beyond the native runner's 64-bit integers"));
        assert_eq!(run(r#"["add", ["lit", 9223372036854775806], ["lit", 1]]"#), Ok(Value::Int(i64::MAX)));
        assert!(run(r#"["filter", "int", ["lit", "99999999999999999999"], [], {}]"#).unwrap_err().contains("out of the native runner's range"));
        assert_eq!(run(r#"["filter", "int", ["lit", "9223372036854775807"], [], {}]"#), Ok(Value::Int(i64::MAX)));
        assert_eq!(run(r#"["slice", ["lit", [1, 2]], ["lit", -9223372036854775807], null]"#), Ok(Value::List(vec![Value::Int(1), Value::Int(2)])));
    }

    #[test]
    fn a_name_the_run_may_have_set_falls_back_on_the_plan_value() {
        // "r" is set by the run: its value wins; "nope" is not: the plan's value stands in
        assert_eq!(run(r#"["attr", ["name", "r", ["lit", {"rc": 7}]], "rc"]"#), Ok(Value::Int(0)));
        assert_eq!(run(r#"["name", "nope", ["lit", "plan"]]"#), Ok(Value::from("plan")));
        assert_eq!(run(r#"["test", "defined", ["name", "nope", ["lit", 1]], [], {}]"#), Ok(Value::Bool(true)));
    }

    #[test]
    fn str_split_and_strip_as_python() {
        let list = |items: &[&str]| Value::List(items.iter().map(|s| Value::from(*s)).collect());
        assert_eq!(run(r#"["call", ["lit", "  a b\t c "], "split", []]"#), Ok(list(&["a", "b", "c"])));
        assert_eq!(run(r#"["call", ["lit", "  a b  c "], "split", [["lit", null], ["lit", 1]]]"#), Ok(list(&["a", "b  c "])));
        assert_eq!(run(r#"["call", ["lit", "a,,b"], "split", [["lit", ","]]]"#), Ok(list(&["a", "", "b"])));
        assert_eq!(run(r#"["call", ["lit", "a,b,c"], "split", [["lit", ","], ["lit", 1]]]"#), Ok(list(&["a", "b,c"])));
        assert_eq!(run(r#"["call", ["lit", "a"], "split", [["lit", ""]]]"#), Err("empty separator".to_string()));
        assert_eq!(run(r#"["call", ["lit", " \u001c x \n"], "strip", []]"#), Ok(Value::from("x")));
        assert_eq!(run(r#"["call", ["lit", "xxaxbxx"], "strip", [["lit", "x"]]]"#), Ok(Value::from("axb")));
        assert_eq!(run(r#"["item", ["call", ["lit", "a b"], "split", []], ["lit", -1]]"#), Ok(Value::from("b")));
        assert_eq!(run(r#"["re", "search", ["lit", {"rc": 0}], [["LITERAL", 39], ["LITERAL", 114]]]"#), Ok(Value::Bool(true)));
    }

    fn cond(expr: &str, ir: &str) -> Result<bool, String> {
        let map = vars();
        let c = parse(&format!(
            r#"{{"expr": {}, "ir": {}}}"#,
            crate::json::to_string(&Value::from(expr)),
            ir
        ))
        .unwrap();
        condition(&c, &Scope::new(vec![&map]))
    }

    #[test]
    fn names_attributes_and_items() {
        assert_eq!(run(r#"["attr", ["name", "r"], "rc"]"#), Ok(Value::Int(0)));
        assert_eq!(
            run(r#"["item", ["name", "r"], ["lit", "rc"]]"#),
            Ok(Value::Int(0))
        );
        assert_eq!(
            run(r#"["item", ["attr", ["name", "r"], "stdout_lines"], ["lit", -1]]"#),
            Ok(Value::from("world"))
        );
        assert_eq!(
            run(r#"["name", "nope"]"#),
            Err("'nope' is undefined".to_string())
        );
        assert_eq!(
            run(r#"["attr", ["name", "r"], "y"]"#),
            Err("object of type 'dict' has no attribute 'y'".to_string())
        );
        assert_eq!(
            run(r#"["attr", ["attr", ["name", "nope"], "a"], "b"]"#),
            Err("'nope' is undefined".to_string())
        );
        assert_eq!(
            run(r#"["item", ["attr", ["name", "r"], "stdout_lines"], ["lit", 5]]"#),
            Err("object of type 'list' has no attribute 5".to_string())
        );
        assert_eq!(
            run(r#"["attr", ["lit", 3], "x"]"#),
            Err("object of type 'int' has no attribute 'x'".to_string())
        );
        assert!(run(r#"["attr", ["name", "r"], "items"]"#)
            .unwrap_err()
            .contains("needs Jinja2"));
        // a key named like a dict method is found first
        assert_eq!(
            run(r#"["attr", ["name", "n"], "items"]"#),
            Ok(parse("[1, 2, 3]").unwrap())
        );
        assert_eq!(
            run(r#"["item", ["lit", "abc"], ["lit", 1]]"#),
            Ok(Value::from("b"))
        );
    }

    #[test]
    fn comparisons_follow_python() {
        assert_eq!(compare("==", &Value::Bool(true), &Value::Int(1)), Ok(true));
        assert_eq!(compare("==", &Value::Int(1), &Value::Float(1.0)), Ok(true));
        assert_eq!(compare("==", &Value::from("1"), &Value::Int(1)), Ok(false));
        assert_eq!(compare("<", &Value::Int(1), &Value::Float(1.5)), Ok(true));
        assert_eq!(
            compare(">=", &Value::from("b"), &Value::from("a")),
            Ok(true)
        );
        let a = parse("[1, 2]").unwrap();
        let b = parse("[1, 2, 0]").unwrap();
        assert_eq!(compare("<", &a, &b), Ok(true));
        assert_eq!(
            compare("<", &Value::from("a"), &Value::Int(1)),
            Err("'<' not supported between instances of 'str' and 'int'".to_string())
        );
        assert_eq!(
            compare(">", &parse("[1]").unwrap(), &parse("[\"a\"]").unwrap()),
            Err("'>' not supported between instances of 'int' and 'str'".to_string())
        );
        assert_eq!(
            compare(
                "==",
                &parse(r#"{"a": 1, "b": 2}"#).unwrap(),
                &parse(r#"{"b": 2, "a": true}"#).unwrap()
            ),
            Ok(true)
        );
        assert_eq!(
            compare(
                "<",
                &Value::Int(9007199254740993),
                &Value::Float(9007199254740992.0)
            ),
            Ok(false)
        );
    }

    #[test]
    fn membership() {
        assert_eq!(
            contains(&Value::from("hello"), &Value::from("ell")),
            Ok(true)
        );
        assert_eq!(
            contains(&parse("[0, 1]").unwrap(), &Value::Bool(true)),
            Ok(true)
        );
        assert_eq!(
            contains(&parse(r#"{"a": 1}"#).unwrap(), &Value::from("a")),
            Ok(true)
        );
        assert_eq!(
            contains(&Value::from("x"), &Value::Int(1)),
            Err("'in <string>' requires string as left operand, not int".to_string())
        );
        assert_eq!(
            contains(&Value::Int(3), &Value::Int(1)),
            Err("argument of type 'int' is not iterable".to_string())
        );
    }

    #[test]
    fn boolean_operators_return_operands() {
        assert_eq!(
            run(r#"["or", ["lit", ""], ["lit", "x"]]"#),
            Ok(Value::from("x"))
        );
        assert_eq!(
            run(r#"["and", ["lit", 0], ["name", "nope"]]"#),
            Ok(Value::Int(0))
        );
        assert_eq!(
            run(r#"["and", ["lit", 1], ["name", "nope"]]"#),
            Err("'nope' is undefined".to_string())
        );
        assert_eq!(run(r#"["not", ["lit", []]]"#), Ok(Value::Bool(true)));
    }

    #[test]
    fn str_methods_startswith_and_endswith() {
        assert_eq!(run(r#"["call", ["lit", "/tmp/x.test"], "startswith", [["lit", "/tmp"]]]"#), Ok(Value::Bool(true)));
        assert_eq!(run(r#"["call", ["lit", "/tmp/x.test"], "endswith", [["lit", ".txt"]]]"#), Ok(Value::Bool(false)));
        let err = run(r#"["call", ["lit", "a"], "startswith", [["lit", 1]]]"#).unwrap_err();
        assert_eq!(err, "startswith first arg must be str or a tuple of str, not int");
        assert!(run(r#"["call", ["name", "nope"], "startswith", [["lit", "a"]]]"#).unwrap_err().contains("'nope' is undefined"));
        assert!(run(r#"["call", ["lit", 3], "startswith", [["lit", "a"]]]"#).unwrap_err().contains("has no attribute 'startswith'"));
    }

    #[test]
    fn basename_split_and_contains_as_python() {
        let list = |items: &[&str]| Ok(Value::List(items.iter().map(|s| Value::from(*s)).collect()));
        assert_eq!(run(r#"["filter", "basename", ["lit", "/tmp/ansible.x1.test"], [], {}]"#), Ok(Value::from("ansible.x1.test")));
        assert_eq!(run(r#"["filter", "basename", ["lit", "/tmp/"], [], {}]"#), Ok(Value::from("")));
        assert!(run(r#"["filter", "basename", ["lit", 3], [], {}]"#).is_err());
        assert_eq!(run(r#"["filter", "split", ["lit", "a.b.c"], [["lit", "."]], {}]"#), list(&["a", "b", "c"]));
        assert_eq!(run(r#"["filter", "split", ["lit", "a.b.c"], [["lit", "."], ["lit", 1]], {}]"#), list(&["a", "b.c"]));
        assert_eq!(run(r#"["filter", "split", ["lit", "  a  b c  "], [], {}]"#), list(&["a", "b", "c"]));
        assert_eq!(run(r#"["filter", "split", ["lit", " a  b c  "], [["lit", null], ["lit", 1]], {}]"#), list(&["a", "b c  "]));
        assert!(run(r#"["filter", "split", ["lit", "abc"], [["lit", ""]], {}]"#).is_err());
        assert_eq!(
            run(r#"["filter", "first", ["filter", "split", ["filter", "basename", ["lit", "/t/ansible.ab.test"], [], {}], [["lit", "."]], {}], [], {}]"#),
            Ok(Value::from("ansible"))
        );
        assert_eq!(run(r#"["test", "contains", ["lit", "Hello World"], [["lit", "World"]], {}]"#), Ok(Value::Bool(true)));
        assert_eq!(run(r#"["test", "contains", ["lit", [1, 2]], [["lit", 3]], {}]"#), Ok(Value::Bool(false)));
    }

    #[test]
    fn filters() {
        assert_eq!(
            run(r#"["filter", "int", ["attr", ["name", "n"], "num"], [], {}]"#),
            Ok(Value::Int(4))
        );
        assert_eq!(
            run(r#"["filter", "int", ["lit", "4.7"], [], {}]"#),
            Ok(Value::Int(4))
        );
        assert_eq!(
            run(r#"["filter", "int", ["lit", "x"], [["lit", 7]], {}]"#),
            Ok(Value::Int(7))
        );
        assert_eq!(
            run(r#"["filter", "int", ["lit", "ff"], [], {"base": ["lit", 16]}]"#),
            Ok(Value::Int(255))
        );
        assert_eq!(
            run(r#"["filter", "int", ["lit", " 1_000 "], [], {}]"#),
            Ok(Value::Int(1000))
        );
        assert_eq!(
            run(r#"["filter", "float", ["lit", "1e3"], [], {}]"#),
            Ok(Value::Float(1000.0))
        );
        assert_eq!(
            run(r#"["filter", "float", ["lit", null], [], {}]"#),
            Ok(Value::Float(0.0))
        );
        assert_eq!(
            run(r#"["filter", "bool", ["lit", " Yes "], [], {}]"#),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(r#"["filter", "bool", ["lit", 2], [], {}]"#),
            Ok(Value::Bool(false))
        );
        assert_eq!(
            run(r#"["filter", "length", ["lit", "héllo"], [], {}]"#),
            Ok(Value::Int(5))
        );
        assert_eq!(
            run(r#"["filter", "length", ["lit", 3], [], {}]"#),
            Err("object of type 'int' has no len()".to_string())
        );
        assert_eq!(
            run(r#"["filter", "lower", ["lit", true], [], {}]"#),
            Ok(Value::from("true"))
        );
        assert_eq!(
            run(r#"["filter", "string", ["lit", [1, "a"]], [], {}]"#),
            Ok(Value::from("[1, 'a']"))
        );
        assert_eq!(
            run(r#"["filter", "trim", ["lit", " x\n"], [], {}]"#),
            Ok(Value::from("x"))
        );
        assert_eq!(
            run(r#"["filter", "first", ["lit", {"k": 1}], [], {}]"#),
            Ok(Value::from("k"))
        );
        assert_eq!(
            run(r#"["filter", "last", ["lit", []], [], {}]"#),
            Err("No last item, sequence was empty.".to_string())
        );
        assert_eq!(
            run(r#"["filter", "default", ["name", "nope"], [["lit", 5]], {}]"#),
            Ok(Value::Int(5))
        );
        assert_eq!(
            run(r#"["filter", "d", ["lit", ""], [["lit", 5], ["lit", true]], {}]"#),
            Ok(Value::Int(5))
        );
        assert_eq!(
            run(r#"["filter", "d", ["lit", ""], [["lit", 5]], {}]"#),
            Ok(Value::from(""))
        );
        assert!(run(r#"["filter", "regex_replace", ["lit", ""], [], {}]"#)
            .unwrap_err()
            .contains("needs Jinja2"));
    }

    #[test]
    fn tests() {
        let t = |name: &str, v: &str| run(&format!(r#"["test", "{}", {}, [], {{}}]"#, name, v));
        assert_eq!(t("defined", r#"["name", "nope"]"#), Ok(Value::Bool(false)));
        assert_eq!(
            t("undefined", r#"["attr", ["name", "r"], "zz"]"#),
            Ok(Value::Bool(true))
        );
        assert_eq!(t("changed", r#"["name", "r"]"#), Ok(Value::Bool(true)));
        assert_eq!(t("changed", r#"["name", "l"]"#), Ok(Value::Bool(true)));
        assert_eq!(t("succeeded", r#"["name", "r"]"#), Ok(Value::Bool(true)));
        assert_eq!(t("skipped", r#"["name", "r"]"#), Ok(Value::Bool(false)));
        assert_eq!(t("finished", r#"["name", "r"]"#), Ok(Value::Bool(true)));
        assert_eq!(t("timedout", r#"["name", "r"]"#), Ok(Value::Bool(false)));
        assert_eq!(t("timedout", r#"["lit", {"timedout": {"period": 1}}]"#), Ok(Value::Bool(true)));
        assert_eq!(t("timedout", r#"["lit", {"timedout": {"period": 0}}]"#), Ok(Value::Bool(false)));
        assert_eq!(t("number", r#"["lit", true]"#), Ok(Value::Bool(false)));
        assert_eq!(
            t("none", r#"["attr", ["name", "n"], "x"]"#),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            t("failure", r#"["lit", 1]"#),
            Err("The 'failed' test expects a dictionary (a registered result)".to_string())
        );
        assert_eq!(
            t("changed", r#"["name", "nope"]"#),
            Err("'nope' is undefined".to_string())
        );
        assert_eq!(
            run(r#"["test", "in", ["lit", 2], [["lit", [1, 2]]], {}]"#),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(r#"["test", "truthy", ["lit", "no"], [], {"convert_bool": ["lit", true]}]"#),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn chains_add_and_concat_as_python() {
        let chain = |a: &str, b: &str, c: &str| run(&format!(r#"["chain", {}, [["<", {}], ["<=", {}]]]"#, a, b, c));
        assert_eq!(chain(r#"["lit", 1]"#, r#"["lit", 2]"#, r#"["lit", 2.0]"#), Ok(Value::Bool(true)));
        assert_eq!(chain(r#"["lit", 1]"#, r#"["lit", 3]"#, r#"["lit", 2]"#), Ok(Value::Bool(false)));
        // the chain stops at the first false link: the undefined operand after it is not used
        assert_eq!(chain(r#"["lit", 3]"#, r#"["lit", 2]"#, r#"["name", "nope"]"#), Ok(Value::Bool(false)));
        assert_eq!(chain(r#"["lit", 1]"#, r#"["lit", 2]"#, r#"["name", "nope"]"#), Err("'nope' is undefined".to_string()));
        assert_eq!(run(r#"["add", ["lit", true], ["lit", 1.5]]"#), Ok(Value::Float(2.5)));
        assert_eq!(run(r#"["add", ["lit", "a"], ["lit", "b"]]"#), Ok(Value::from("ab")));
        assert_eq!(run(r#"["add", ["lit", [1]], ["lit", [2]]]"#), Ok(Value::List(vec![Value::Int(1), Value::Int(2)])));
        assert_eq!(run(r#"["add", ["lit", 1], ["lit", "b"]]"#), Err("unsupported operand type(s) for +: 'int' and 'str'".to_string()));
        assert_eq!(run(r#"["concat", [["lit", "x"], ["lit", 1], ["lit", null], ["lit", {"a": true}]]]"#), Ok(Value::from("x1None{'a': True}")));
    }

    #[test]
    fn conditions() {
        assert_eq!(
            cond(
                "r.rc == 0",
                r#"["cmp", "==", ["attr", ["name", "r"], "rc"], ["lit", 0]]"#
            ),
            Ok(true)
        );
        assert_eq!(
            cond(
                " nope == 1 ",
                r#"["cmp", "==", ["name", "nope"], ["lit", 1]]"#
            ),
            Err("Error while evaluating conditional: 'nope' is undefined".to_string())
        );
        assert_eq!(cond("flag", r#"["lit", false]"#), Ok(false));
        assert_eq!(condition(&Value::Null, &Scope::new(vec![])), Ok(true));
    }

    #[test]
    fn a_result_that_is_not_a_boolean_fails_as_in_ansible_2_19() {
        let broken = |b: &str, t: &str| {
            Err(format!(
                "Conditional result ({}) was derived from value of type '{}' at '<unknown>'. \
                 Conditionals must have a boolean result.",
                b, t
            ))
        };
        assert_eq!(cond("flag", r#"["lit", "no"]"#), broken("True", "str"));
        assert_eq!(cond("fact", r#"["name", "fact"]"#), broken("True", "str"));
        assert_eq!(cond("r.stdout", r#"["attr", ["name", "r"], "stdout"]"#), broken("True", "str"));
        assert_eq!(cond("r.rc", r#"["attr", ["name", "r"], "rc"]"#), broken("False", "int"));
        assert_eq!(cond("n.x", r#"["attr", ["name", "n"], "x"]"#), broken("False", "NoneType"));
        assert_eq!(cond("r.results", r#"["attr", ["name", "r"], "results"]"#), broken("False", "list"));
        // the origin the compiler recorded (the task's `origins`), none for None
        let with_origin = |ir: &str| {
            let c = parse(&format!(r#"{{"expr": "x", "ir": {}, "origin": "/p/site.yml:4:8"}}"#, ir)).unwrap();
            condition(&c, &Scope::new(vec![]))
        };
        assert_eq!(
            with_origin(r#"["lit", "yes"]"#),
            Err("Conditional result (True) was derived from value of type 'str' at '/p/site.yml:4:8'. \
                 Conditionals must have a boolean result."
                .to_string())
        );
        assert_eq!(
            with_origin(r#"["lit", null]"#),
            Err("Conditional result (False) was derived from value of type 'NoneType' at '<unknown>'. \
                 Conditionals must have a boolean result."
                .to_string())
        );
        let allowed = |ir: &str| {
            let map = vars();
            let c = parse(&format!(r#"{{"expr": "x", "ir": {}, "allow_broken": true}}"#, ir)).unwrap();
            condition(&c, &Scope::new(vec![&map]))
        };
        assert_eq!(allowed(r#"["lit", "no"]"#), Ok(true));
        assert_eq!(allowed(r#"["attr", ["name", "r"], "rc"]"#), Ok(false));
        assert_eq!(allowed(r#"["lit", true]"#), Ok(true));
    }
}
