//! `tempfile`: ansible-core's module (run by the pyz runtime through its module bridge), with
//! the result that gives: `mkstemp`/`mkdtemp` as Python's `tempfile` makes them (8 characters
//! of `abcdefghijklmnopqrstuvwxyz0123456789_`, mode 0600/0700, `gettempdir()` when no `path`),
//! then `AnsibleModule.exit_json`'s path information and `invocation`, in the same key order.
//! The module does not support check mode: it is skipped there, as AnsibleModule skips it.
//!
//! The compiler refuses arguments outside `state`, `path`, `prefix`, `suffix` (the argument
//! spec's unknown-parameter error is not reproduced here).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use super::files::{self, arg, map, py_str};
use super::{Ctx, ModuleResult};
use crate::json::{py_repr_str, Map, Value};

const CHARACTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
/// `os.TMP_MAX` on Linux: how many names Python tries before it gives up.
const TMP_MAX: usize = 238_328;

/// ansible.builtin.tempfile.
pub fn tempfile(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    let given = |name: &str| arg(args, name).map(py_str);
    // AnsibleModule's module_args: the given options (sorted, as the module bridge sends them),
    // then the defaults that are not None (state, prefix, suffix), then those that are (path)
    let mut module_args = Map::new();
    let mut given_args: Vec<&(String, Value)> = args.iter().collect();
    given_args.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in given_args.into_iter().map(|pair| (&pair.0, &pair.1)) {
        if !key.starts_with('_') && !value.is_null() {
            let value = if key == "path" { Value::Str(files::expand(value)) } else { Value::Str(py_str(value)) };
            module_args.insert(key, value);
        }
    }
    for (key, default) in [("state", "file"), ("prefix", "ansible."), ("suffix", "")] {
        if !module_args.contains_key(key) {
            module_args.insert(key, Value::from(default));
        }
    }
    if !module_args.contains_key("path") {
        module_args.insert("path", Value::Null);
    }
    let invocation = map(vec![("module_args", Value::Dict(module_args.clone()))]);
    let state = given("state").unwrap_or_else(|| "file".to_string());
    if state != "file" && state != "directory" {
        return Ok(failed(format!("value of state must be one of: file, directory, got: {}", state), invocation));
    }
    if ctx.check {
        return Ok(map(vec![
            ("skipped", Value::Bool(true)),
            ("msg", Value::from("remote module (tempfile) does not support check mode")),
            ("invocation", Value::Dict(invocation)),
            ("failed", Value::Bool(false)),
            ("changed", Value::Bool(false)),
        ]));
    }
    let prefix = given("prefix").unwrap_or_else(|| "ansible.".to_string());
    let suffix = given("suffix").unwrap_or_default();
    for (name, value) in [("prefix", &prefix), ("suffix", &suffix)] {
        if !value.is_empty() && value.as_str() != files::basename(value) {
            let msg = format!("{} must be a valid file name component, got {}", name, py_repr_str(value));
            return Ok(failed(msg, invocation));
        }
    }
    let dir = match module_args.get("path").and_then(Value::as_str) {
        Some(path) => path.to_string(),
        None => match gettempdir(ctx.environment) {
            Ok(dir) => dir,
            Err(msg) => return Ok(failed(msg, invocation)),
        },
    };
    let made = if state == "file" { mkstemp(&dir, &prefix, &suffix) } else { mkdtemp(&dir, &prefix, &suffix) };
    let path = match made {
        Ok(path) => path,
        Err((e, path)) => return Ok(failed(files::os_error_text(&e, &path), invocation)),
    };
    let mut result = map(vec![("changed", Value::Bool(true))]);
    for (key, value) in files::path_info(&path, true).0 {
        result.insert(&key, value);
    }
    result.insert("invocation", Value::Dict(invocation));
    result.insert("failed", Value::Bool(false));
    Ok(result)
}

/// `fail_json(msg=...)`'s result, as the module bridge registers it.
fn failed(msg: String, invocation: Map) -> Map {
    map(vec![
        ("failed", Value::Bool(true)),
        ("msg", Value::Str(msg)),
        ("invocation", Value::Dict(invocation)),
        ("exception", Value::from("(traceback unavailable)")),
        ("changed", Value::Bool(false)),
    ])
}

/// Python's `_RandomNameSequence`: 8 characters of CHARACTERS.
fn random_name() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| CHARACTERS[*b as usize % CHARACTERS.len()] as char).collect()
}

/// Try names until one is new: `make(path)`; an existing name is tried again, as Python does.
fn unique(dir: &str, prefix: &str, suffix: &str, make: impl Fn(&str) -> io::Result<()>) -> Result<String, (io::Error, String)> {
    let mut last = String::new();
    for _ in 0..TMP_MAX {
        let path = files::join(dir, &format!("{}{}{}", prefix, random_name(), suffix));
        match make(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = path,
            Err(e) => return Err((e, path)),
        }
    }
    Err((io::Error::from_raw_os_error(17), last))
}

/// `tempfile.mkstemp`: a new 0600 file; its absolute path.
pub(crate) fn mkstemp(dir: &str, prefix: &str, suffix: &str) -> Result<String, (io::Error, String)> {
    let path = unique(dir, prefix, suffix, |p| {
        fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).custom_flags(libc_nofollow()).open(p).map(drop)
    })?;
    Ok(files::abspath(&path))
}

/// `tempfile.mkdtemp` (Python 3.11: the path as joined).
fn mkdtemp(dir: &str, prefix: &str, suffix: &str) -> Result<String, (io::Error, String)> {
    unique(dir, prefix, suffix, |p| fs::DirBuilder::new().mode(0o700).create(p))
}

fn libc_nofollow() -> i32 {
    0o400000 // O_NOFOLLOW on Linux (x86-64 and aarch64)
}

/// `tempfile.gettempdir()`: the first of TMPDIR, TEMP, TMP (the task's environment, then the
/// runner's), /tmp, /var/tmp, /usr/tmp and the working directory where a file can be made.
pub(crate) fn gettempdir(environment: &Map) -> Result<String, String> {
    let mut dirs = Vec::new();
    for name in ["TMPDIR", "TEMP", "TMP"] {
        let value = environment.get(name).map(py_str).or_else(|| std::env::var(name).ok());
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            dirs.push(value);
        }
    }
    dirs.extend(["/tmp", "/var/tmp", "/usr/tmp"].iter().map(|d| d.to_string()));
    let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| ".".to_string());
    dirs.push(cwd.clone());
    for dir in dirs {
        let dir = if dir == cwd { dir } else { files::abspath(&dir) };
        for _ in 0..100 {
            let probe = files::join(&dir, &random_name());
            match fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&probe) {
                Ok(_) => {
                    let _ = fs::remove_file(&probe);
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(_) => break,
            }
        }
    }
    Err(format!("[Errno 2] No usable temporary directory found in {}", "['/tmp', '/var/tmp', '/usr/tmp']"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(check: bool, args: &str) -> Map {
        let args = crate::json::parse(args).unwrap();
        let (env, embedded) = (Map::new(), Map::new());
        let mut ctx = Ctx { module: "tempfile", check, diff: false, environment: &env, files: &embedded, warnings: Vec::new() };
        tempfile(&mut ctx, args.as_dict().unwrap()).ok().unwrap()
    }

    #[test]
    fn makes_files_and_directories_like_python() {
        let dir = crate::test_dir("tempfile", "made").to_string_lossy().into_owned();
        let res = run(false, &format!(r#"{{"suffix": ".x", "path": "{}", "prefix": "pre"}}"#, dir));
        let path = res.get("path").and_then(Value::as_str).unwrap().to_string();
        let name = files::basename(&path);
        assert!(name.starts_with("pre") && name.ends_with(".x") && name.len() == 13, "{}", name);
        assert_eq!(res.get("mode"), Some(&Value::from("0600")));
        assert_eq!(res.get("state"), Some(&Value::from("file")));
        let keys: Vec<&str> = res.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["changed", "path", "uid", "gid", "owner", "group", "mode", "state", "size", "invocation", "failed"]);
        let args = res.get("invocation").and_then(|i| i.get("module_args")).unwrap();
        let keys: Vec<&str> = args.as_dict().unwrap().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["path", "prefix", "suffix", "state"]);
        let res = run(false, &format!(r#"{{"state": "directory", "path": "{}"}}"#, dir));
        assert_eq!(res.get("mode"), Some(&Value::from("0700")));
        assert_eq!(res.get("state"), Some(&Value::from("directory")));
    }

    #[test]
    fn failures_and_check_mode() {
        let res = run(false, r#"{"path": "/nonexistent-rustle/x"}"#);
        let msg = res.get("msg").and_then(Value::as_str).unwrap();
        assert!(msg.starts_with("[Errno 2] No such file or directory: '/nonexistent-rustle/x/ansible."), "{}", msg);
        let res = run(false, r#"{"prefix": "a/b"}"#);
        assert_eq!(res.get("msg"), Some(&Value::from("prefix must be a valid file name component, got 'a/b'")));
        let res = run(false, r#"{"state": "bogus"}"#);
        assert_eq!(res.get("msg"), Some(&Value::from("value of state must be one of: file, directory, got: bogus")));
        let res = run(true, r#"{"state": "directory"}"#);
        assert_eq!(res.get("skipped"), Some(&Value::Bool(true)));
        let args = res.get("invocation").and_then(|i| i.get("module_args")).unwrap();
        let keys: Vec<&str> = args.as_dict().unwrap().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["state", "prefix", "suffix", "path"]);
    }
}
