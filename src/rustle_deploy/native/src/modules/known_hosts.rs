//! `known_hosts`: ansible-core's module (run by the pyz runtime through its module bridge),
//! with the result that gives: `ssh-keygen -F` finds the host's entries as the module asks it,
//! the same diff, the same rewrite (a temp file beside the file, then Ansible's atomic move),
//! `hash_host` as HMAC-SHA1 with a random 20-byte salt, then `AnsibleModule.exit_json`'s path
//! information and `invocation`, in the same key order.
//!
//! The compiler refuses arguments outside `name`, `key`, `path`, `hash_host`, `state` (the
//! `host` alias included). A key with fewer than three fields fails with a message of its own
//! where the Python module raises an IndexError.

use std::fs;
use std::io::Write;

use super::files::{self, map, py_str};
use super::{Ctx, ModuleResult};
use crate::json::{Map, Value};

/// ansible.builtin.known_hosts.
pub fn known_hosts(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    // AnsibleModule's params: the given options (sorted, as the module bridge sends them),
    // then the defaults that are not None (path, hash_host, state), then key
    let mut params = Map::new();
    let mut given: Vec<&(String, Value)> = args.iter().filter(|(k, v)| !k.starts_with('_') && !v.is_null()).collect();
    given.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut bad_bool = None;
    for (key, value) in given.into_iter().map(|pair| (&pair.0, &pair.1)) {
        let value = match key.as_str() {
            "path" => Value::Str(files::expand(value)),
            "hash_host" => match files::boolean(value, "hash_host") {
                Ok(b) => Value::Bool(b),
                Err(e) => {
                    bad_bool = Some(e.msg);
                    value.clone()
                }
            },
            _ => Value::Str(py_str(value)),
        };
        params.insert(key, value);
    }
    for (key, default) in [
        ("path", Value::Str(files::expand(&Value::from("~/.ssh/known_hosts")))),
        ("hash_host", Value::Bool(false)),
        ("state", Value::from("present")),
        ("key", Value::Null),
    ] {
        if !params.contains_key(key) {
            params.insert(key, default);
        }
    }
    let invocation = map(vec![("module_args", Value::Dict(params.clone()))]);
    let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_string);
    let state = text("state").unwrap_or_default();
    if let Some(msg) = bad_bool {
        return Ok(failed(vec![], msg, invocation));
    }
    let name = match text("name") {
        Some(name) => name,
        None => return Ok(failed(vec![], "missing required arguments: name".to_string(), invocation)),
    };
    if state != "present" && state != "absent" {
        let msg = format!("value of state must be one of: absent, present, got: {}", state);
        return Ok(failed(vec![], msg, invocation));
    }
    let path = text("path").unwrap_or_default();
    let hash_host = params.get("hash_host") == Some(&Value::Bool(true));
    match enforce_state(ctx, &name.to_lowercase(), text("key").filter(|k| !k.is_empty()), &path, hash_host, &state) {
        Outcome::Failed(pairs, msg) => Ok(failed(pairs, msg, invocation)),
        Outcome::Checked(results) => {
            // the module's exit_json in check mode: its results alone, no parameters
            let mut out = results;
            out.insert("invocation", Value::Dict(invocation));
            out.insert("failed", Value::Bool(false));
            Ok(out)
        }
        Outcome::Done(results) => {
            let mut out = params;
            for (key, value) in results.0 {
                out.insert(&key, value);
            }
            for (key, value) in files::path_info(&path, true).0 {
                if key != "path" {
                    out.insert(&key, value);
                }
            }
            out.insert("invocation", Value::Dict(invocation));
            out.insert("failed", Value::Bool(false));
            Ok(out)
        }
    }
}

enum Outcome {
    /// `fail_json(msg, **pairs)`
    Failed(Vec<(&'static str, Value)>, String),
    /// `exit_json(**results)` in check mode
    Checked(Map),
    /// what `enforce_state` returns
    Done(Map),
}

/// `fail_json(msg=..., **pairs)`'s result, as the module bridge registers it.
fn failed(pairs: Vec<(&str, Value)>, msg: String, invocation: Map) -> Map {
    let mut out = map(pairs);
    out.insert("failed", Value::Bool(true));
    out.insert("msg", Value::Str(msg));
    out.insert("invocation", Value::Dict(invocation));
    out.insert("exception", Value::from("(traceback unavailable)"));
    out.insert("changed", Value::Bool(false));
    out
}

fn enforce_state(ctx: &Ctx, host: &str, key: Option<String>, path: &str, hash_host: bool, state: &str) -> Outcome {
    let mut results = map(vec![("changed", Value::Bool(false))]);
    let sshkeygen = match bin_path("ssh-keygen") {
        Ok(found) => found,
        Err(msg) => return Outcome::Failed(vec![], msg),
    };
    if key.is_none() && state != "absent" {
        return Outcome::Failed(vec![], "No key specified when adding a host".to_string());
    }
    let mut key = key;
    if let (Some(k), true) = (&key, hash_host) {
        key = Some(match hash_host_key(host, k) {
            Some(hashed) => hashed,
            None => return Outcome::Failed(vec![], too_few_fields(k)),
        });
    }
    if let Some(k) = &mut key {
        if !k.ends_with('\n') {
            k.push('\n');
        }
    }
    if let Some(k) = &key {
        if let Err(msg) = sanity_check(ctx, host, k, &sshkeygen) {
            return Outcome::Failed(vec![], msg);
        }
    }
    let (found, replace_or_add, found_line) = match search_for_host_key(ctx, host, key.as_deref(), path, &sshkeygen) {
        Ok(found) => found,
        Err(msg) => return Outcome::Failed(vec![], msg),
    };
    results.insert("diff", compute_diff(path, found_line, replace_or_add, state, key.as_deref()));
    if state == "absent" && found_line.is_none() && key.is_some() {
        return Outcome::Done(results); // removing a key that is not there: no change
    }
    if ctx.check {
        results.insert("changed", Value::Bool(replace_or_add || (state == "present") != found));
        return Outcome::Checked(results);
    }
    if found && key.is_none() && state == "absent" {
        let argv = vec![sshkeygen.clone(), "-R".to_string(), host.to_string(), "-f".to_string(), path.to_string()];
        match super::command::run_argv(ctx.environment, &argv) {
            Ok((0, _, _)) => {}
            Ok((rc, stdout, stderr)) => {
                let pairs = vec![
                    ("cmd", Value::Str(argv.join(" "))),
                    ("rc", Value::Int(rc as i64)),
                    ("stdout", Value::Str(stdout)),
                    ("stderr", Value::Str(stderr.clone())),
                ];
                return Outcome::Failed(pairs, stderr.trim_end().to_string());
            }
            Err(e) => return Outcome::Failed(vec![], format!("[Errno {}] {}", e.raw_os_error().unwrap_or(0), crate::sys::strerror(&e))),
        }
        results.insert("changed", Value::Bool(true));
    }
    if replace_or_add || found != (state == "present") {
        let before = match fs::read(path) {
            Ok(data) => Some(universal_newlines(&data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => return Outcome::Failed(vec![], format!("Failed to read {}.", crate::json::py_repr_str(path))),
        };
        let mut text = String::new();
        for (number, line) in before.as_deref().unwrap_or("").split_inclusive('\n').enumerate() {
            if found_line == Some(number + 1) && (replace_or_add || state == "absent") {
                continue; // the line whose key is replaced
            }
            text.push_str(line);
        }
        if state == "present" {
            text.push_str(key.as_deref().unwrap_or(""));
        }
        if let Err(msg) = rewrite(path, text.as_bytes()) {
            return Outcome::Failed(vec![], msg);
        }
        results.insert("changed", Value::Bool(true));
    }
    Outcome::Done(results)
}

/// The module's temp file (`tmpXXXXXXXX`, 0600, beside `path`), then `atomic_move`: the
/// existing file's mode and owner, or 0666 & ~umask for a new one.
fn rewrite(path: &str, data: &[u8]) -> Result<(), String> {
    let dir = files::dirname(path);
    let dir = if dir.is_empty() { ".".to_string() } else { dir };
    let tmp = super::tempfile::mkstemp(&dir, "tmp", "")
        .map_err(|_| format!("Failed to write to file {}.", crate::json::py_repr_str(path)))?;
    let written = fs::OpenOptions::new().write(true).open(&tmp).and_then(|mut f| f.write_all(data));
    let moved = written
        .map_err(|_| format!("Failed to write to file {}.", crate::json::py_repr_str(path)))
        .and_then(|()| files::adopt_attributes(&tmp, path).map_err(|f| f.msg))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| files::os_error_text(&e, path)));
    if moved.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    moved
}

/// Python's text-mode read: UTF-8 (undecodable bytes replaced), `\r\n` and `\r` read as `\n`.
fn universal_newlines(data: &[u8]) -> String {
    files::to_text(data).replace("\r\n", "\n").replace('\r', "\n")
}

/// `module.get_bin_path(name, required=True)`: PATH, then /sbin, /usr/sbin, /usr/local/sbin.
fn bin_path(name: &str) -> Result<String, String> {
    let mut dirs: Vec<String> = std::env::var("PATH").unwrap_or_default().split(':').map(str::to_string).collect();
    for extra in ["/sbin", "/usr/sbin", "/usr/local/sbin"] {
        if !dirs.iter().any(|d| d == extra) {
            dirs.push(extra.to_string());
        }
    }
    for dir in &dirs {
        let candidate = files::join(dir, name);
        if files::isfile(&candidate) && files::can_access(&candidate, 1) {
            return Ok(candidate);
        }
    }
    Err(format!("Failed to find required executable \"{}\" in paths: {}", name, dirs.join(":")))
}

fn too_few_fields(key: &str) -> String {
    format!("the key {} has fewer fields than a known_hosts line (host, type, key)", crate::json::py_repr_str(key.trim()))
}

/// `sanity_check`: one host name (no comma list), and the key must be for it (`ssh-keygen -F`
/// over the key alone, written to a temp file).
fn sanity_check(ctx: &Ctx, host: &str, key: &str, sshkeygen: &str) -> Result<(), String> {
    // re.search(r'\S+(\s+)?,(\s+)?', host): a comma with something other than space before it
    let comma_list = host.char_indices().any(|(i, c)| c == ',' && !host[..i].trim_end().is_empty());
    if comma_list {
        return Err("Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file.".to_string());
    }
    let dir = super::tempfile::gettempdir(ctx.environment)?;
    let tmp = super::tempfile::mkstemp(&dir, "tmp", "").map_err(|(e, p)| files::os_error_text(&e, &p))?;
    let outcome = fs::write(&tmp, key)
        .map_err(|_| format!("Failed to write to temporary file {}.", crate::json::py_repr_str(&tmp)))
        .and_then(|()| {
            let argv = vec![sshkeygen.to_string(), "-F".to_string(), host.to_string(), "-f".to_string(), tmp.clone()];
            super::command::run_argv(ctx.environment, &argv).map_err(|e| crate::sys::strerror(&e))
        });
    let _ = fs::remove_file(&tmp);
    match outcome? {
        (_, stdout, _) if stdout.is_empty() => Err("Host parameter does not match hashed host field in supplied key".to_string()),
        _ => Ok(()),
    }
}

/// A known_hosts line as the module compares it: `options` (a marker), host, type, key.
#[derive(PartialEq)]
struct Entry {
    options: Option<String>,
    host: String,
    kind: String,
    key: String,
}

/// `normalize_known_hosts_key`; None when the line has too few fields.
fn normalize(line: &str) -> Option<Entry> {
    let k: Vec<&str> = line.split_whitespace().collect();
    let marker = k.first()?.starts_with('@');
    let at = if marker { 1 } else { 0 };
    Some(Entry {
        options: if marker { Some(k[0].to_string()) } else { None },
        host: k.get(at)?.to_string(),
        kind: k.get(at + 1)?.to_string(),
        key: k.get(at + 2)?.to_string(),
    })
}

/// `search_for_host_key` -> (found, replace_or_add, found_line).
fn search_for_host_key(ctx: &Ctx, host: &str, key: Option<&str>, path: &str, sshkeygen: &str) -> Result<(bool, bool, Option<usize>), String> {
    if !files::exists(path) {
        return Ok((false, false, None));
    }
    let argv = vec![sshkeygen.to_string(), "-F".to_string(), host.to_string(), "-f".to_string(), path.to_string()];
    let (rc, stdout, stderr) = super::command::run_argv(ctx.environment, &argv).map_err(|e| crate::sys::strerror(&e))?;
    if stdout.is_empty() && stderr.is_empty() && (rc == 0 || rc == 1) {
        return Ok((false, false, None));
    }
    if rc != 0 {
        return Err(format!("ssh-keygen failed (rc={}, stdout='{}',stderr='{}')", rc, stdout, stderr));
    }
    let key = match key {
        None => return Ok((true, false, None)),
        Some(key) => key,
    };
    let mut new_key = normalize(key).ok_or_else(|| too_few_fields(key))?;
    let mut found_line = None;
    for line in stdout.split('\n') {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            let number = line.find("found: line ").and_then(|at| {
                let digits: String = line[at + 12..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<usize>().ok()
            });
            match number {
                Some(n) => found_line = Some(n),
                None => return Err(format!("failed to parse output of ssh-keygen for line number: '{}'", line)),
            }
            continue;
        }
        let found_key = normalize(line).ok_or_else(|| too_few_fields(line))?;
        let marker = found_key.options.as_deref().unwrap_or("");
        if marker.starts_with("@cert-authority") || marker.starts_with("@revoke") {
            if new_key == found_key {
                return Ok((true, false, found_line));
            }
        } else {
            if new_key.host.starts_with("|1|") && found_key.host.starts_with("|1|") {
                new_key.host = found_key.host.clone(); // a hashed host keeps its hash
            }
            if new_key == found_key {
                return Ok((true, false, found_line));
            } else if new_key.kind == found_key.kind {
                return Ok((true, true, found_line));
            }
        }
    }
    Ok((true, true, None))
}

/// `hash_host_key`: the host field replaced by `|1|salt|HMAC-SHA1(salt, host)`, base64.
fn hash_host_key(host: &str, key: &str) -> Option<String> {
    let mut salt = [0u8; 20];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut salt);
    }
    let hashed = crate::sha::hmac_sha1(&salt, host.as_bytes());
    let mut parts: Vec<String> = key.split_whitespace().map(str::to_string).collect();
    let i = if parts.first()?.starts_with('@') { 1 } else { 0 };
    *parts.get_mut(i)? = format!("|1|{}|{}", crate::b64::encode(&salt), crate::b64::encode(&hashed));
    Some(parts.join(" "))
}

/// `compute_diff`: the file before and after, as the module predicts it.
fn compute_diff(path: &str, found_line: Option<usize>, replace_or_add: bool, state: &str, key: Option<&str>) -> Value {
    let mut diff = map(vec![
        ("before_header", Value::from(path)),
        ("after_header", Value::from(path)),
        ("before", Value::from("")),
        ("after", Value::from("")),
    ]);
    let before = match fs::read(path) {
        Ok(data) => universal_newlines(&data),
        Err(e) => {
            if e.kind() == std::io::ErrorKind::NotFound {
                diff.insert("before_header", Value::from("/dev/null"));
            }
            String::new()
        }
    };
    let mut lines = splitlines_keepends(&before);
    if let Some(n) = found_line.filter(|n| (replace_or_add || state == "absent") && *n >= 1 && *n <= lines.len()) {
        lines.remove(n - 1);
    }
    if state == "present" && (replace_or_add || found_line.is_none()) {
        lines.push(key.unwrap_or(""));
    }
    diff.insert("before", Value::Str(before.clone()));
    diff.insert("after", Value::Str(lines.concat()));
    Value::Dict(diff)
}

/// Python's `text.splitlines(True)`: every line boundary str knows, `\r\n` as one.
fn splitlines_keepends(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let boundary = rest.find(|c| matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}'));
        let end = match boundary {
            None => rest.len(),
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + rest[i..].chars().next().map_or(1, char::len_utf8),
        };
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keys_and_comma_lists_as_the_python_module_reads_them() {
        assert_eq!(splitlines_keepends("a\nb\r\nc\x0cd"), vec!["a\n", "b\r\n", "c\x0c", "d"]);
        let e = normalize("@revoked h ssh-ed25519 AAAA extra").unwrap();
        assert_eq!((e.options.as_deref(), e.host.as_str(), e.kind.as_str(), e.key.as_str()), (Some("@revoked"), "h", "ssh-ed25519", "AAAA"));
        assert!(normalize("h ssh-rsa").is_none());
        let hashed = hash_host_key("example.org", "example.org ssh-rsa AAAA").unwrap();
        let fields: Vec<&str> = hashed.split(' ').collect();
        let salt = crate::b64::decode(fields[0].split('|').nth(2).unwrap()).unwrap();
        let digest = crate::b64::decode(fields[0].split('|').nth(3).unwrap()).unwrap();
        assert_eq!(digest, crate::sha::hmac_sha1(&salt, b"example.org"));
        assert_eq!(&fields[1..], &["ssh-rsa", "AAAA"]);
    }
}
