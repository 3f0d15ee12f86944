//! rustle-runner: the host side of rustle-deploy's native format (docs/native.md).
//!
//! The command line: `agent`, `run`, `verify`, `selfcheck`, `--version`. Usage errors exit 3
//! with `rustle-runner: error: ...` on stderr, like a pyz artifact's command line.
//!
//! Modules: `json`, `sha`, `b64`, `sys` and `paths` are the foundation; `payload` reads an artifact;
//! `agent` is the deploy agent; `executor` (with `expr`, `regex`, `events`, `modules`) runs a
//! plan. Only `main` and `agent` touch the process as a whole (stdin, exit).
#![allow(dead_code)]

mod agent;
mod b64;
mod become_as;
mod events;
mod executor;
mod expr;
mod facts;
mod json;
mod modules;
mod paths;
mod payload;
mod python_side;
mod regex;
mod sha;
mod sys;

use payload::RunOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const EXIT_USAGE: i32 = 3;
const USAGE: &str = "usage: rustle-runner {--version | selfcheck SHA256 | agent | install SHA256 DEST | verify ARTIFACT | \
run ARTIFACT --host NAME [--check] [--diff] [--tags a,b]... [--skip-tags a,b]... [--journal FILE] \
[--run-id ID] [-v]}";

static OWN_SHA256: Mutex<Option<Result<String, String>>> = Mutex::new(None);

/// The sha256 of this executable's file (its identity on hosts), computed once.
pub fn own_sha256() -> Result<String, String> {
    let mut cached = OWN_SHA256.lock().unwrap_or_else(|e| e.into_inner());
    cached.get_or_insert_with(hash_own_executable).clone()
}

fn hash_own_executable() -> Result<String, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.push(exe);
    }
    if let Some(argv0) = std::env::args_os().next() {
        candidates.push(PathBuf::from(argv0));
    }
    let mut last = "cannot locate this executable".to_string();
    for path in candidates {
        match hash_file(&path) {
            Ok(sha) => return Ok(sha),
            Err(e) => last = format!("{}: cannot read this executable: {}", path.display(), sys::strerror(&e)),
        }
    }
    Err(last)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = sha::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.hex());
        }
        hash.update(&buf[..n]);
    }
}

/// Whether `path` is a readable native artifact compiled for this runner; else the reason.
pub fn verify_artifact(path: &Path) -> Result<(), String> {
    let artifact = payload::Artifact::load(path)?;
    let own = own_sha256()?;
    if artifact.runner() != own {
        return Err(format!(
            "{}: compiled for rustle-runner {}, this runner is {}",
            path.display(),
            artifact.runner(),
            own
        ));
    }
    Ok(())
}

/// `install SHA256 DEST`: this executable was just written to a temporary name by the native
/// bootstrap (docs/native.md). If it hashes to SHA256 it renames itself to DEST and carries on
/// as the agent, in this same process; otherwise it removes itself and says why (exit 20).
fn install(sha: &str, dest: &str) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return install_failed(None, &format!("cannot locate this executable: {}", sys::strerror(&e))),
    };
    match own_sha256() {
        Ok(own) if own == sha => {}
        Ok(own) => {
            let why = format!("the runner arrived hashing to {}, not {}: the upload was cut or changed", own, sha);
            return install_failed(Some(&exe), &why);
        }
        Err(e) => return install_failed(Some(&exe), &e),
    }
    // Its bytes reach the disk before its name does: after an OS crash the name never points at
    // an empty or partial file (which a shell would run as an empty script, exit 0).
    if let Err(e) = std::fs::File::open(&exe).and_then(|f| f.sync_all()) {
        return install_failed(Some(&exe), &format!("cannot sync the runner to disk: {}", sys::strerror(&e)));
    }
    if let Err(e) = std::fs::rename(&exe, dest) {
        return install_failed(Some(&exe), &format!("{}: cannot install the runner: {}", dest, sys::strerror(&e)));
    }
    if let Some(dir) = Path::new(dest).parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    agent::main()
}

fn install_failed(exe: Option<&Path>, why: &str) -> i32 {
    if let Some(exe) = exe {
        let _ = std::fs::remove_file(exe);
    }
    let mut line = json::Map::new();
    line.insert("agent", json::Value::from("error"));
    line.insert("kind", json::Value::from("runner_install"));
    line.insert("message", json::Value::from(why));
    println!("{}", json::to_string_ascii(&json::sorted(&json::Value::Dict(line))));
    agent::EXIT_AGENT_ERROR
}

fn usage_error(message: &str) -> i32 {
    eprintln!("{}", USAGE);
    eprintln!("rustle-runner: error: {}", message);
    EXIT_USAGE
}

/// The value of an option: `--name=value` or the next argument.
fn option_value(name: &str, inline: Option<String>, rest: &mut std::vec::IntoIter<String>) -> Result<String, String> {
    match inline.or_else(|| rest.next()) {
        Some(value) => Ok(value),
        None => Err(format!("argument {}: expected one argument", name)),
    }
}

/// `run ARTIFACT --host NAME ...` parsed as the pyz command line parses it.
fn parse_run(args: Vec<String>) -> Result<(PathBuf, String, RunOptions), String> {
    let mut artifact = None;
    let mut host = None;
    let mut journal = None;
    let mut run_id = None;
    let mut opts = RunOptions::default();
    let (mut tags, mut skip_tags) = (Vec::new(), Vec::new());
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if arg.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        match name.as_str() {
            "--host" => host = Some(option_value("--host", inline, &mut rest)?),
            "--tags" => tags.push(option_value("--tags", inline, &mut rest)?),
            "--skip-tags" => skip_tags.push(option_value("--skip-tags", inline, &mut rest)?),
            "--journal" => journal = Some(option_value("--journal", inline, &mut rest)?),
            "--run-id" => run_id = Some(option_value("--run-id", inline, &mut rest)?),
            "--check" | "--diff" | "--verbose" if inline.is_some() => {
                return Err(format!("argument {}: ignored explicit argument '{}'", name, inline.unwrap_or_default()))
            }
            "--check" => opts.check = true,
            "--diff" => opts.diff = true,
            "--verbose" => opts.verbosity += 1,
            v if v.len() > 1 && v.starts_with('-') && v[1..].chars().all(|c| c == 'v') => {
                opts.verbosity += (v.len() - 1) as i64
            }
            other if other.starts_with('-') && other != "-" => {
                return Err(format!("unrecognized arguments: {}", other))
            }
            _ if artifact.is_none() => artifact = Some(PathBuf::from(arg)),
            _ => return Err(format!("unrecognized arguments: {}", arg)),
        }
    }
    let artifact = artifact.ok_or("the following arguments are required: ARTIFACT")?;
    let host = host.ok_or("the following arguments are required: --host")?;
    opts.tags = payload::csv(&tags);
    opts.skip_tags = payload::csv(&skip_tags);
    opts.journal = journal.map(PathBuf::from);
    opts.run_id = run_id.unwrap_or_else(|| format!("{}-{}", sys::local_timestamp(), sys::getpid()));
    Ok((artifact, host, opts))
}

fn run_command(args: Vec<String>) -> i32 {
    let mut args = args.into_iter();
    let command = match args.next() {
        Some(command) => command,
        None => return usage_error("a command is required: agent, run, verify, selfcheck or --version"),
    };
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "--version" | "-V" if rest.is_empty() => {
            println!("rustle-runner {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "agent" if rest.is_empty() => agent::main(),
        "become-worker" if rest.is_empty() => become_as::worker_main(),
        "install" if rest.len() == 2 => install(&rest[0], &rest[1]),
        "selfcheck" if rest.len() == 1 => match own_sha256() {
            Ok(sha) if sha == rest[0] => 0,
            Ok(_) => 1,
            Err(e) => {
                eprintln!("rustle-runner: error: {}", e);
                1
            }
        },
        "verify" if rest.len() == 1 => match verify_artifact(Path::new(&rest[0])) {
            Ok(()) => 0,
            Err(reason) => {
                eprintln!("rustle-runner: error: {}", reason);
                EXIT_USAGE
            }
        },
        "run" => match parse_run(rest) {
            Ok((artifact, host, opts)) => executor::run_artifact(&artifact, &host, &opts),
            Err(message) => usage_error(&message),
        },
        "--version" | "-V" | "agent" | "become-worker" | "install" | "selfcheck" | "verify" => {
            usage_error(&format!("wrong number of arguments for {}", command))
        }
        other => usage_error(&format!("unknown command '{}'", other)),
    }
}

fn main() {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => args.push(arg),
            Err(bad) => {
                std::process::exit(usage_error(&format!("argument {:?} is not valid UTF-8", bad)))
            }
        }
    }
    let code = run_command(args);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// A fresh, empty directory for one test: `rr-<module>-<name>-<pid>` under the system's
/// temporary directory (tests of one binary run in parallel, so module and name keep them apart).
#[cfg(test)]
fn test_dir(module: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rr-{}-{}-{}", module, name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_run_flags_like_the_pyz_cli() {
        let args = strings(&[
            "art", "--host", "web1", "--check", "--tags", "a, b", "--tags=c", "--skip-tags", "x",
            "-vv", "--verbose", "--journal", "/tmp/j", "--run-id=r1", "--diff",
        ]);
        let (artifact, host, opts) = parse_run(args).unwrap();
        assert_eq!(artifact, PathBuf::from("art"));
        assert_eq!(host, "web1");
        assert!(opts.check && opts.diff);
        assert_eq!(opts.tags, vec!["a", "b", "c"]);
        assert_eq!(opts.skip_tags, vec!["x"]);
        assert_eq!(opts.verbosity, 3);
        assert_eq!(opts.journal, Some(PathBuf::from("/tmp/j")));
        assert_eq!(opts.run_id, "r1");
    }

    #[test]
    fn run_usage_errors() {
        assert!(parse_run(strings(&["art"])).unwrap_err().contains("--host"));
        assert!(parse_run(strings(&["--host", "h"])).unwrap_err().contains("ARTIFACT"));
        assert!(parse_run(strings(&["a", "--host"])).unwrap_err().contains("expected one argument"));
        assert!(parse_run(strings(&["a", "b", "--host", "h"])).unwrap_err().contains("unrecognized"));
        assert!(parse_run(strings(&["a", "--host", "h", "--bogus"])).unwrap_err().contains("--bogus"));
        let (_, _, opts) = parse_run(strings(&["a", "--host", "h"])).unwrap();
        assert!(opts.run_id.ends_with(&format!("-{}", sys::getpid())));
        assert_eq!(run_command(strings(&["nope"])), EXIT_USAGE);
        assert_eq!(run_command(strings(&["verify"])), EXIT_USAGE);
    }

    #[test]
    fn own_sha256_hashes_the_test_executable() {
        let exe = std::env::current_exe().unwrap();
        let want = sha::sha256_hex(&std::fs::read(exe).unwrap());
        assert_eq!(own_sha256().unwrap(), want);
        assert_eq!(run_command(vec!["selfcheck".into(), want]), 0);
        assert_eq!(run_command(strings(&["selfcheck", "00"])), 1);
    }

    #[test]
    fn verify_requires_this_runner() {
        let dir = std::env::temp_dir().join(format!("rr-main-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("art");
        let doc = |runner: &str| {
            format!(
                "{{\"format\": \"rustle-native\", \"version\": 1, \"runner\": \"{}\", \
                 \"binary_name\": \"b\", \"hosts\": {{}}, \"files\": {{}}}}",
                runner
            )
        };
        std::fs::write(&path, payload::seal(&doc(&own_sha256().unwrap()))).unwrap();
        assert_eq!(verify_artifact(&path), Ok(()));
        std::fs::write(&path, payload::seal(&doc("feed"))).unwrap();
        assert!(verify_artifact(&path).unwrap_err().contains("compiled for rustle-runner feed"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
