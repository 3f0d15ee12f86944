//! The deploy agent: a port of `deploy/agent.py` (docs/remote.md, docs/native.md "Remote side").
//!
//! The request is the first line of stdin (one JSON object); the artifact's bytes follow when
//! `push` is set or after the agent printed `need_upload`. Replies on stdout are JSON lines
//! with the key "agent" (`need_upload`, `lock_wait`, `error`, `done`), keys sorted and
//! non-ASCII escaped as Python's `json.dumps(obj, sort_keys=True)` writes them; the events of a
//! run go to the same fd 1. Exit status: the run's exit when a run happened, else 0;
//! `EXIT_AGENT_ERROR` after an `error` line.
//!
//! The remote layout, lock, history lines, error kinds and messages are agent.py's. A native
//! artifact runs in this process (`executor::run_artifact`); a pyz one is handed to `python3`.

use crate::json::{self, py_repr, py_str, type_name, Map, Value};
use crate::paths::{expanduser, normpath};
use crate::payload::{self, RunOptions};
use crate::sha::Sha256;
use crate::sys;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::mem::ManuallyDrop;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::FromRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const EXIT_AGENT_ERROR: i32 = 20;
/// agent.py's CREATED_MARKER: the remote directory was created by rustle-deploy.
const CREATED_MARKER: &str = ".created-by-rustle-deploy";
const CHUNK: usize = 1 << 18;
const AGENT_PROTOCOL: i64 = 1;
const ENOSPC: i32 = 28;
#[cfg(target_os = "linux")]
const EDQUOT: i32 = 122;
#[cfg(not(target_os = "linux"))]
const EDQUOT: i32 = 69;

/// Why a request failed; each variant is one of agent.py's `except` clauses.
#[derive(Debug)]
enum Fail {
    /// `AgentError(kind, message, **fields)`.
    Agent { kind: &'static str, message: String, fields: Map },
    /// `OSError`, with its `filename` when Python's would carry one.
    Io { err: io::Error, path: Option<String> },
    /// `KeyError`/`ValueError`/`TypeError`: "TypeName: message".
    Internal(String),
}

type Res<T> = Result<T, Fail>;

fn agent_error(kind: &'static str, message: String) -> Fail {
    Fail::Agent { kind, message, fields: Map::new() }
}

fn agent_error_with(kind: &'static str, message: String, fields: Vec<(&str, Value)>) -> Fail {
    let mut map = Map::new();
    for (key, value) in fields {
        map.insert(key, value);
    }
    Fail::Agent { kind, message, fields: map }
}

/// An OSError whose `filename` is `path`.
fn io_at(path: &str) -> impl FnOnce(io::Error) -> Fail + '_ {
    move |err| Fail::Io { err, path: Some(path.to_string()) }
}

/// An OSError without a filename (os.write, os.fsync, flock).
fn io_plain(err: io::Error) -> Fail {
    Fail::Io { err, path: None }
}

// ---------------------------------------------------------------------------------------------
// Output

/// Write one JSON line (keys sorted) straight to fd 1, shared with the run we may start.
fn emit(obj: &Map) {
    let mut line = json::to_string_ascii(&json::sorted(&Value::Dict(obj.clone())));
    line.push('\n');
    let _ = io::stdout().flush();
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    let _ = out.write_all(line.as_bytes());
}

fn line(pairs: Vec<(&str, Value)>) -> Map {
    let mut map = Map::new();
    for (key, value) in pairs {
        map.insert(key, value);
    }
    map
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Python value semantics for request fields

fn truthy(value: Option<&Value>) -> bool {
    value.map_or(false, crate::json::truthy)
}

/// `d[key]` of a dict value.
fn key<'a>(dict: &'a Value, name: &str) -> Res<&'a Value> {
    match dict {
        Value::Dict(map) => map.get(name).ok_or_else(|| Fail::Internal(format!("KeyError: '{}'", name))),
        other => Err(Fail::Internal(format!("TypeError: '{}' object is not subscriptable", type_name(other)))),
    }
}

/// Python's `int(value)`.
fn py_int(value: &Value) -> Res<i64> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(*b as i64),
        Value::Float(f) if f.is_finite() => Ok(f.trunc() as i64),
        Value::Float(f) => Err(Fail::Internal(format!("ValueError: cannot convert float {} to integer", py_repr(&Value::Float(*f))))),
        Value::Str(s) => s.trim().parse().map_err(|_| {
            Fail::Internal(format!("ValueError: invalid literal for int() with base 10: {}", json::py_repr_str(s)))
        }),
        other => Err(Fail::Internal(format!(
            "TypeError: int() argument must be a string, a bytes-like object or a real number, not '{}'",
            type_name(other)
        ))),
    }
}

/// Python's `float(value)`.
fn py_float(value: &Value) -> Res<f64> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Bool(b) => Ok(*b as i64 as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => s.trim().to_ascii_lowercase().replace("infinity", "inf").parse().map_err(|_| {
            Fail::Internal(format!("ValueError: could not convert string to float: {}", json::py_repr_str(s)))
        }),
        other => Err(Fail::Internal(format!(
            "TypeError: float() argument must be a string or a real number, not '{}'",
            type_name(other)
        ))),
    }
}

/// Python's `list(value or ())` as strings (a string gives its characters, a dict its keys).
fn py_str_list(value: Option<&Value>) -> Res<Vec<String>> {
    if !truthy(value) {
        return Ok(Vec::new());
    }
    match value {
        Some(Value::List(items)) => Ok(items.iter().map(py_str).collect()),
        Some(Value::Str(s)) => Ok(s.chars().map(String::from).collect()),
        Some(Value::Dict(map)) => Ok(map.iter().map(|(k, _)| k.clone()).collect()),
        Some(other) => Err(Fail::Internal(format!("TypeError: '{}' object is not iterable", type_name(other)))),
        None => Ok(Vec::new()),
    }
}

/// agent.py's `_check_name`: a non-empty single path component.
fn check_name(value: &Value, what: &str) -> Res<String> {
    if !truthy(Some(value)) {
        return Err(agent_error("request", format!("bad {} {}", what, py_repr(value))));
    }
    let text = match value {
        Value::Str(s) => s,
        other => {
            return Err(Fail::Internal(format!(
                "TypeError: argument of type '{}' is not iterable",
                type_name(other)
            )))
        }
    };
    if text.contains('/') || text == "." || text == ".." || text.contains('\0') {
        return Err(agent_error("request", format!("bad {} {}", what, py_repr(value))));
    }
    Ok(text.clone())
}

// ---------------------------------------------------------------------------------------------
// Paths

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{}{}", dir, name)
    } else {
        format!("{}/{}", dir, name)
    }
}

/// `os.path.abspath`.
fn abspath(path: &str) -> String {
    if path.starts_with('/') {
        return normpath(path);
    }
    let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    normpath(&join(&cwd, path))
}

/// Paths under the remote directory.
struct Layout {
    root: String,
    artifacts: String,
    releases: String,
    runs: String,
    history: String,
    lock: String,
    unpacked: String,
    runners: String,
}

impl Layout {
    fn new(remote_dir: &str) -> Layout {
        let root = abspath(&expanduser(remote_dir));
        Layout {
            artifacts: join(&root, "artifacts"),
            releases: join(&root, "releases"),
            runs: join(&root, "runs"),
            history: join(&root, "history.jsonl"),
            lock: join(&root, "lock"),
            unpacked: join(&root, "unpacked"),
            runners: join(&root, "runners"),
            root,
        }
    }

    fn artifact(&self, sha: &str) -> String {
        join(&self.artifacts, sha)
    }

    fn release(&self, name: &str) -> String {
        join(&self.releases, name)
    }
}

fn is_dir(path: &str) -> bool {
    Path::new(path).is_dir()
}

/// `os.makedirs(path, mode, exist_ok=True)`: missing parents get 0o777, the leaf `mode`.
fn makedirs(path: &Path, mode: u32) -> io::Result<()> {
    if let Some(head) = path.parent() {
        if !head.as_os_str().is_empty() && path.file_name().is_some() && !head.exists() {
            match makedirs(head, 0o777) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
    }
    match DirBuilder::new().mode(mode).create(path) {
        Err(_) if path.is_dir() => Ok(()),
        other => other,
    }
}

fn mkdirs(path: &str) -> Res<()> {
    if let Err(e) = makedirs(Path::new(path), 0o700) {
        return Err(agent_error_with(
            "remote_dir",
            format!("{}: cannot create directory: {}", path, sys::strerror(&e)),
            vec![("path", Value::from(path))],
        ));
    }
    if !sys::can_write_dir(Path::new(path)) {
        return Err(agent_error_with(
            "remote_dir",
            format!("{}: directory is not writable", path),
            vec![("path", Value::from(path))],
        ));
    }
    Ok(())
}

/// agent.py's `_make_root`: create the remote directory (0700) when it is missing, with the
/// marker that lets a cleanup remove it once it is empty again.
fn make_root(root: &str) -> Res<()> {
    if is_dir(root) {
        if !sys::can_write_dir(Path::new(root)) {
            return Err(agent_error_with(
                "remote_dir",
                format!("{}: directory is not writable", root),
                vec![("path", Value::from(root))],
            ));
        }
        return Ok(());
    }
    mkdirs(root)?;
    let marker = join(root, CREATED_MARKER);
    OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&marker).map_err(io_at(&marker))?;
    Ok(())
}

/// agent.py's `check_remote_dir`: the remote directory must be rustle-deploy's own place.
fn check_remote_dir(value: &str) -> Res<()> {
    let parts: Vec<&str> = value.split('/').collect();
    let problem = if value.trim().is_empty() {
        Some("is empty: it would be the login directory itself")
    } else if value.chars().any(|c| (c as u32) < 32 || c as u32 == 127) {
        Some("contains a control character")
    } else if !value.starts_with('/') && !value.starts_with('~') {
        Some("is relative: it would depend on the directory the connection starts in")
    } else if parts.contains(&"..") {
        Some("has a '..' segment")
    } else if parts[1..].iter().all(|p| p.is_empty() || *p == ".") {
        Some(if value.starts_with('/') { "is the filesystem root" } else { "is a home directory itself" })
    } else if expanduser(value).starts_with('~') {
        Some("names the home directory of a user this host does not know")
    } else if abspath(&expanduser(value)) == "/" {
        Some("is the filesystem root")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(agent_error_with(
            "remote_dir",
            format!("remote directory {} {}", py_repr(&Value::from(value)), problem),
            vec![("path", Value::from(value))],
        )),
        None => Ok(()),
    }
}

fn list_dir(path: &str) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

fn sorted_names(path: &str) -> Vec<String> {
    let mut names = list_dir(path).unwrap_or_default();
    names.sort_unstable();
    names
}

// ---------------------------------------------------------------------------------------------
// The lock

/// An exclusive flock() on `remote_dir/lock`, released when dropped (closing the file).
struct Lock {
    _file: Option<File>,
}

/// agent.py's `Lock._open`: `create` false (a dry run) opens an existing lock file read-only
/// and gives None without one; a `lock` that is a symlink is not ours and is never opened.
fn open_lock(path: &str, create: bool) -> Res<Option<File>> {
    if kind(path) == Some("symlink") {
        return Err(agent_error(
            "remote_dir",
            format!("{}: the lock file is a symbolic link, which rustle-deploy never makes; remove it", path),
        ));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    if create {
        options.write(true).create(true).truncate(false).mode(0o600);
    }
    match options.open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if !create && e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(agent_error("remote_dir", format!("{}: cannot open lock file: {}", path, sys::strerror(&e)))),
    }
}

/// A cleanup may have removed the file we locked: then the lock guards nothing.
fn still_the_lock_file(file: &File, path: &str) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.ino() == named.ino(),
        _ => false,
    }
}

fn deadline_after(timeout: f64) -> Option<Instant> {
    if timeout.is_nan() || timeout == f64::INFINITY {
        None
    } else {
        Some(Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 1e9)))
    }
}

/// Python's str() of a float for the `lock_busy` message (`60.0`, `inf`).
fn float_str(f: f64) -> String {
    py_repr(&Value::Float(f))
}

impl Lock {
    /// Lock `path`, waiting at most `timeout` seconds; one `lock_wait` line when it must wait.
    fn acquire(path: &str, timeout: f64) -> Res<Lock> {
        Lock::acquire_if(path, timeout, true)
    }

    /// `acquire`, creating the lock file only when `create` (agent.py's `Lock(create=...)`).
    fn acquire_if(path: &str, timeout: f64, create: bool) -> Res<Lock> {
        use std::os::unix::io::AsRawFd;
        let mut file = match open_lock(path, create)? {
            Some(file) => file,
            None => return Ok(Lock { _file: None }),
        };
        let deadline = deadline_after(timeout);
        let mut told = false;
        let mut delay = 0.01;
        loop {
            match sys::flock_exclusive_nb(file.as_raw_fd()) {
                Ok(()) => {
                    if still_the_lock_file(&file, path) {
                        return Ok(Lock { _file: Some(file) });
                    }
                    drop(file); // locked a file that was removed meanwhile: lock the new one
                    if !create {
                        return Ok(Lock { _file: None });
                    }
                    let dir = Path::new(path).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                    make_root(&dir)?;
                    file = match open_lock(path, create)? {
                        Some(file) => file,
                        None => return Ok(Lock { _file: None }),
                    };
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io_plain(e)),
            }
            if deadline.map_or(false, |d| Instant::now() >= d) {
                return Err(agent_error(
                    "lock_busy",
                    format!(
                        "{}: another deployment has held the lock for more than {}s",
                        path,
                        float_str(timeout)
                    ),
                ));
            }
            if !told {
                emit(&line(vec![("agent", "lock_wait".into()), ("path", path.into())]));
                told = true;
            }
            std::thread::sleep(Duration::from_secs_f64(delay));
            delay = (delay * 2.0f64).min(0.2);
        }
    }
}

fn lock_timeout(req: &Value) -> Res<f64> {
    match req.get("lock_timeout") {
        Some(value) => py_float(value),
        None => Ok(60.0),
    }
}

// ---------------------------------------------------------------------------------------------
// Links, hashes, history

/// The artifact sha256 a release link points at, or None.
fn link_sha(path: &str) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    let target = target.to_string_lossy();
    Some(target.rsplit('/').next().unwrap_or("").to_string())
}

/// Point `path` at ../../artifacts/<sha> atomically (symlink to a temp name, then rename).
fn swap_link(path: &str, sha: &str) -> Res<()> {
    let tmp = format!("{}.tmp-{}", path, sys::getpid());
    let _ = fs::remove_file(&tmp);
    let target = format!("../../artifacts/{}", sha);
    symlink(&target, &tmp).map_err(io_at(&target))?;
    fs::rename(&tmp, path).map_err(io_at(&tmp))
}

fn fsync_dir(path: &str) {
    if let Ok(dir) = File::open(path) {
        let _ = dir.sync_all();
    }
}

fn hash_file(path: &str) -> Res<String> {
    let mut file = File::open(path).map_err(io_at(path))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_plain(e)),
        };
        hash.update(&buf[..n]);
    }
    Ok(hash.hex())
}

fn append_history(layout: &Layout, mut entry: Map) -> Res<()> {
    if !entry.contains_key("time") {
        entry.insert("time", Value::Float(now()));
    }
    let mut text = json::to_string_ascii(&json::sorted(&Value::Dict(entry)));
    text.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&layout.history)
        .map_err(io_at(&layout.history))?;
    let size = file.metadata().map(|m| m.len()).map_err(io_at(&layout.history))?;
    if let Err(e) = file.write_all(text.as_bytes()).and_then(|_| file.sync_all()) {
        let _ = file.set_len(size); // no torn line for the next one to run into
        return Err(io_at(&layout.history)(e));
    }
    Ok(())
}

fn read_history(layout: &Layout) -> Vec<Value> {
    let data = match fs::read(&layout.history) {
        Ok(data) => data,
        Err(_) => return Vec::new(),
    };
    data.split(|b| *b == b'\n')
        .filter_map(|raw| std::str::from_utf8(raw).ok())
        .filter_map(|text| json::parse(text).ok()) // a torn last line from a crash: ignore it
        .collect()
}

fn remove_stale_uploads(layout: &Layout) {
    for name in list_dir(&layout.artifacts).unwrap_or_default() {
        if name.starts_with(".tmp-") {
            let _ = fs::remove_file(join(&layout.artifacts, &name));
        }
    }
}

/// Keep unpacked copies (made by the Python agent) of current and previous releases only.
fn prune_unpacked(layout: &Layout) {
    let present = match list_dir(&layout.unpacked) {
        Ok(names) => names,
        Err(_) => return,
    };
    let mut keep = Vec::new();
    for name in list_dir(&layout.releases).unwrap_or_default() {
        for link in ["current", "previous"] {
            if let Some(sha) = link_sha(&join(&layout.release(&name), link)) {
                keep.push(sha);
            }
        }
    }
    for entry in present {
        if !keep.contains(&entry) {
            let _ = fs::remove_dir_all(join(&layout.unpacked, &entry));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upload

fn short_read(got: i64, size: i64) -> Fail {
    agent_error_with(
        "short_read",
        format!("upload cut after {} of {} bytes", got, size),
        vec![("received", Value::Int(got)), ("size", Value::Int(size))],
    )
}

/// Read up to `buf.len()` bytes; 0 only at end of input.
fn read_block(input: &mut dyn Read, buf: &mut [u8]) -> Res<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map_err(io_plain),
        }
    }
}

/// Read exactly `size` bytes of the artifact into a temp file, check it, rename it in place.
fn receive(layout: &Layout, input: &mut dyn Read, sha: &str, size: i64) -> Res<()> {
    let tmp = join(&layout.artifacts, &format!(".tmp-{}-{}", sha, sys::getpid()));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    let result = copy_and_check(file, input, sha, size).and_then(|()| {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700)).map_err(io_at(&tmp))?;
        fs::rename(&tmp, layout.artifact(sha)).map_err(io_at(&tmp))?;
        fsync_dir(&layout.artifacts);
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copy `size` bytes from `input` into `file`, fsync and close it, and check their sha256.
fn copy_and_check(mut file: File, input: &mut dyn Read, sha: &str, size: i64) -> Res<()> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got: i64 = 0;
    while got < size {
        let want = (CHUNK as i64).min(size - got) as usize;
        let n = read_block(input, &mut buf[..want])?;
        if n == 0 {
            return Err(short_read(got, size));
        }
        hash.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io_plain)?;
        got += n as i64;
    }
    file.sync_all().map_err(io_plain)?;
    drop(file);
    let actual = hash.hex();
    if actual != sha {
        return Err(agent_error_with(
            "checksum",
            format!("uploaded artifact hashes to {}, expected {}", actual, sha),
            vec![("expected", sha.into()), ("actual", actual.into())],
        ));
    }
    Ok(())
}

/// Read and drop `size` bytes of an artifact this host already has.
fn skip(input: &mut dyn Read, size: i64) -> Res<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = read_block(input, &mut buf[..(CHUNK as i64).min(left) as usize])?;
        if n == 0 {
            return Err(short_read(size - left, size));
        }
        left -= n as i64;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running and verifying

const RUN_MARK: &str = "RUSTLE_RUN_MARK";
const STOP_GRACE: f64 = 5.0;
const EXIT_INTERRUPTED: i32 = 143; // 128 + SIGTERM
const INTERRUPTED_WHY: &str = "the controller went away (the connection closed) during the run";

/// Every process of the run but this one, parents before children: those whose environment
/// carries `mark`, and every descendant of this process or of those (agent.py's
/// `_run_processes`: the marker finds what left the tree, the tree what carries no marker).
fn run_processes(mark: &str) -> Vec<i32> {
    let me = sys::getpid();
    let needle = format!("{}={}", RUN_MARK, mark).into_bytes();
    let mut parent: Vec<(i32, i32)> = Vec::new();
    let mut marked: Vec<i32> = Vec::new();
    for name in list_dir("/proc").unwrap_or_default() {
        let pid: i32 = match name.parse() {
            Ok(pid) => pid,
            Err(_) => continue,
        };
        let stat = match fs::read(format!("/proc/{}/stat", pid)) {
            Ok(stat) => stat,
            Err(_) => continue,
        };
        let close = match stat.iter().rposition(|b| *b == b')') {
            Some(i) => i,
            None => continue,
        };
        let rest = String::from_utf8_lossy(&stat[close + 1..]).into_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 2 || fields[0] == "Z" {
            continue; // it has ended; what is left is its exit status
        }
        parent.push((pid, fields[1].parse().unwrap_or(0)));
        if let Ok(env) = fs::read(format!("/proc/{}/environ", pid)) {
            if env.split(|b| *b == 0).any(|var| var == needle.as_slice()) {
                marked.push(pid);
            }
        }
    }
    let mut found: Vec<i32> = Vec::new();
    let mut todo: std::collections::VecDeque<i32> = std::iter::once(me).chain(marked).collect();
    while let Some(pid) = todo.pop_front() {
        if found.contains(&pid) {
            continue;
        }
        found.push(pid);
        let mut kids: Vec<i32> = parent.iter().filter(|(_, pp)| *pp == pid).map(|(p, _)| *p).collect();
        kids.sort_unstable();
        todo.extend(kids);
    }
    found.retain(|pid| *pid != me);
    found
}

/// End every process of the run: stop them all (until a look finds none new), then SIGTERM
/// and SIGCONT, and SIGKILL after `grace` seconds; (how many, how many could not be ended).
fn end_run(mark: &str, grace: f64) -> (usize, usize) {
    let send = |pids: &[i32], sig: i32| pids.iter().for_each(|pid| sys::kill_pid(*pid, sig));
    let mut stopped: Vec<i32> = Vec::new();
    for _ in 0..50 {
        let new: Vec<i32> = run_processes(mark).into_iter().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        send(&new, sys::SIGSTOP);
        stopped.extend(new);
    }
    send(&stopped, sys::SIGTERM);
    send(&stopped, sys::SIGCONT);
    let mut ended = stopped;
    let mut killed: Vec<i32> = Vec::new();
    let kill_at = Instant::now() + Duration::from_secs_f64(grace);
    let give_up = kill_at + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let pids = run_processes(mark);
        let now = Instant::now();
        if pids.is_empty() || now >= give_up {
            for pid in &pids {
                if !ended.contains(pid) {
                    ended.push(*pid);
                }
            }
            return (ended.len(), pids.len());
        }
        if now >= kill_at {
            let new: Vec<i32> = pids.iter().copied().filter(|p| !killed.contains(p)).collect();
            send(&new, sys::SIGKILL);
            killed.extend(new);
        } else {
            let new: Vec<i32> = pids.iter().copied().filter(|p| !ended.contains(p)).collect();
            send(&new, sys::SIGTERM); // started by a signal handler meanwhile
        }
        for pid in pids {
            if !ended.contains(&pid) {
                ended.push(pid);
            }
        }
    }
}

/// Six random bytes, hex (for the run's marker).
fn random_hex() -> String {
    let mut buf = [0u8; 6];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{:02x}", b)).collect()
}

/// Ends a run whose controller went away, before the lock is released (agent.py's
/// `_RunGuard`): a watcher thread reads a private copy of the channel; at EOF it stops the
/// run's work (`sys::stop`), ends every process of the run, writes the `interrupted` history
/// line and the journal's `run_interrupted` event, then exits. A run that finishes first
/// claims the guard.
struct RunGuard {
    claim: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RunGuard {
    fn start(fd: i32, layout: &Layout, req: &Value, sha: &str, run_id: &str, journal: &str) -> RunGuard {
        let grace = req.get("stop_grace").and_then(|v| py_float(v).ok()).filter(|g| *g > 0.0).unwrap_or(STOP_GRACE);
        let mark = format!("{}.{}.{}", run_id, sys::getpid(), random_hex());
        std::env::set_var(RUN_MARK, &mark);
        let claim = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mine = claim.clone();
        let history = Layout::new(&layout.root);
        let entry = line(vec![
            ("op", "interrupted".into()),
            ("deployment_id", req.get("deployment_id").cloned().unwrap_or(Value::Null)),
            ("binary_name", req.get("binary_name").cloned().unwrap_or(Value::Null)),
            ("sha256", sha.into()),
            ("run_id", run_id.into()),
        ]);
        let host = req.get("host").cloned().unwrap_or(Value::Null);
        let (run_id, journal) = (run_id.to_string(), journal.to_string());
        std::thread::spawn(move || {
            let mut channel = unsafe { File::from_raw_fd(fd) };
            let mut buf = [0u8; 4096];
            loop {
                match channel.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            if mine.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return; // the run finished first
            }
            sys::stop();
            let (killed, left) = end_run(&mark, grace);
            let note = |mut m: Map| {
                m.insert("why", INTERRUPTED_WHY.into());
                m.insert("killed", Value::Int(killed as i64));
                m.insert("left", Value::Int(left as i64));
                m.insert("grace", Value::Float(grace));
                m
            };
            let event = note(line(vec![
                ("event", "run_interrupted".into()),
                ("host", host),
                ("run_id", run_id.as_str().into()),
                ("time", Value::Float(now())),
            ]));
            let mut text = json::to_string_ascii(&json::sorted(&Value::Dict(event)));
            text.push('\n');
            if let Ok(mut f) = OpenOptions::new().append(true).create(true).mode(0o600).open(&journal) {
                let _ = f.write_all(text.as_bytes());
            }
            let _ = append_history(&history, note(entry));
            let _ = io::stdout().flush();
            std::process::exit(EXIT_INTERRUPTED); // closing the lock file releases the lock
        });
        RunGuard { claim }
    }

    /// The run returned: keep the watcher from ending it; if it already is, wait for that.
    fn finished(&self) {
        if self.claim.swap(true, std::sync::atomic::Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
    }
}

/// The first executable `python3` on PATH (shutil.which's search).
fn find_python() -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/bin:/usr/bin".to_string());
    path.split(':').map(|dir| join(if dir.is_empty() { "." } else { dir }, "python3")).find(|candidate| {
        fs::metadata(candidate).map_or(false, |m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn no_python(path: &str) -> Fail {
    agent_error(
        "no_python",
        format!(
            "{}: a pyz artifact needs python3, and there is none on this host's PATH; \
             install python3 or deploy with --format native",
            path
        ),
    )
}

/// Exit code of a finished child as Python's `returncode`: -N when killed by signal N.
fn return_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(code) => code as i64,
        None => -(status.signal().unwrap_or(0) as i64),
    }
}

/// Run a pyz artifact with `python`; its events go straight to our fd 1.
fn run_pyz(python: &str, path: &str, host: &str, opts: &RunOptions) -> Res<i64> {
    let mut cmd = Command::new(python);
    cmd.args(["-I", "-S", path, "run", "--host", host]);
    if let Some(journal) = &opts.journal {
        cmd.arg("--journal").arg(journal);
    }
    cmd.args(["--run-id", &opts.run_id]);
    if opts.check {
        cmd.arg("--check");
    }
    if opts.diff {
        cmd.arg("--diff");
    }
    for tag in &opts.tags {
        cmd.args(["--tags", tag]);
    }
    for tag in &opts.skip_tags {
        cmd.args(["--skip-tags", tag]);
    }
    for _ in 0..opts.verbosity {
        cmd.arg("-v");
    }
    let status = cmd.status().map_err(io_at(python))?;
    Ok(return_code(status))
}

/// The run could not write its journal (a full disk): end the operation as an agent error
/// that says what had been done (the release was activated before the run started).
fn journal_failed(path: &str, err: &io::Error) {
    let err = match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    };
    emit(&error_line(Fail::Io { err, path: Some(path.to_string()) }, &None));
    exit(EXIT_AGENT_ERROR);
}

/// Run the artifact at `path` for `req["host"]` with the options of `req["run"]`.
fn run_artifact(layout: &Layout, path: &str, req: &Value) -> Res<i64> {
    let run = key(req, "run")?;
    let run_id = check_name(&Value::Str(py_str(key(run, "run_id")?)), "run id")?;
    mkdirs(&layout.runs)?;
    let verbosity = match run.get("verbosity") {
        Some(v) if truthy(Some(v)) => py_int(v)?,
        _ => 0,
    };
    let opts = RunOptions {
        check: truthy(run.get("check")),
        diff: truthy(run.get("diff")),
        tags: payload::csv(&py_str_list(run.get("tags"))?),
        skip_tags: payload::csv(&py_str_list(run.get("skip_tags"))?),
        journal: Some(join(&layout.runs, &format!("{}.jsonl", run_id)).into()),
        run_id,
        verbosity,
    };
    let host = py_str(key(req, "host")?);
    // Found before the watcher starts, so that the error line is written before any SIGTERM.
    let python = match payload::is_native(Path::new(path)) {
        true => None,
        false => Some(find_python().ok_or_else(|| no_python(path))?),
    };
    // The channel stays ours: tasks get /dev/null as stdin, the guard keeps a private copy.
    let watch_fd = sys::dup_fd(0).map_err(io_plain)?;
    let devnull = File::open("/dev/null").map_err(io_at("/dev/null"))?;
    {
        use std::os::unix::io::AsRawFd;
        sys::dup2_fd(devnull.as_raw_fd(), 0).map_err(io_plain)?;
    }
    drop(devnull);
    let sha = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let journal = opts.journal.as_ref().map(|j| j.to_string_lossy().into_owned()).unwrap_or_default();
    let guard = RunGuard::start(watch_fd, layout, req, &sha, &opts.run_id, &journal);
    crate::events::on_journal_error(journal_failed);
    let _ = io::stdout().flush();
    let code = match python {
        None => crate::executor::run_artifact(Path::new(path), &host, &opts) as i64,
        Some(python) => run_pyz(&python, path, &host, &opts)?,
    };
    guard.finished();
    let _ = io::stdout().flush();
    Ok(code)
}

fn verify_failed(message: String, sha: &str, actual: &str) -> Fail {
    agent_error_with(
        "verify_failed",
        message,
        vec![("expected", sha.into()), ("actual", actual.into())],
    )
}

/// Run `python3 ARTIFACT verify`: its exit code and its stdout and stderr together.
fn python_verify(path: &str) -> Res<(i64, String)> {
    let python = find_python().ok_or_else(|| no_python(path))?;
    let (mut reader, writer) = sys::pipe_pair().map_err(io_plain)?;
    let mut child = {
        let mut cmd = Command::new(&python);
        cmd.arg(path).arg("verify").stdin(Stdio::null());
        cmd.stdout(writer.try_clone().map_err(io_plain)?).stderr(writer);
        cmd.spawn().map_err(io_at(&python))?
    }; // the command, and with it our copies of the write end, is dropped here
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(io_plain)?;
    let status = child.wait().map_err(io_plain)?;
    Ok((return_code(status), String::from_utf8_lossy(&out).trim().to_string()))
}

/// The last `n` characters of `text` (Python's `text[-n:]`).
fn tail(text: &str, n: usize) -> &str {
    match text.char_indices().rev().nth(n.saturating_sub(1)) {
        Some((i, _)) if n > 0 => &text[i..],
        _ => text,
    }
}

fn verify(layout: &Layout, sha: &str) -> Res<()> {
    let path = layout.artifact(sha);
    let actual = hash_file(&path)?;
    if actual != sha {
        return Err(verify_failed(format!("{}: content hashes to {}", path, actual), sha, &actual));
    }
    if payload::is_native(Path::new(&path)) {
        // What `rustle-runner verify ARTIFACT` would answer, without starting it.
        if let Err(reason) = crate::verify_artifact(Path::new(&path)) {
            let message = format!("{} verify exited 3: rustle-runner: error: {}", path, reason);
            return Err(verify_failed(message, sha, &actual));
        }
        return Ok(());
    }
    let (code, out) = python_verify(&path)?;
    if code != 0 {
        let message = format!("{} verify exited {}: {}", path, code, tail(&out, 2000));
        return Err(verify_failed(message, sha, &actual));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Operations

/// What the current operation has done so far; an error line carries it (agent.py `PROGRESS`),
/// so that the controller reports what happened: a failure after activation leaves the new
/// release current.
static PROGRESS: std::sync::Mutex<Map> = std::sync::Mutex::new(Map(Vec::new()));

fn progress(result: &Map, stage: &str) {
    let mut p = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    *p = result.clone();
    p.insert("stage", stage.into());
}

/// Enter stage `name` of an operation (agent.py `_stage`); with `trace` in the request, say so
/// at once: the controller times its trace spans by these lines.
fn stage(req: &Value, result: &Map, name: &str) {
    progress(result, name);
    announce(req, name);
}

fn announce(req: &Value, name: &str) {
    if truthy(req.get("trace")) {
        emit(&line(vec![("agent", "stage".into()), ("stage", name.into())]));
    }
}

/// The keys of PROGRESS an error line carries (agent.py `_progress`).
fn progress_fields() -> Vec<(String, Value)> {
    let p = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    ["stage", "uploaded", "activated", "previous", "damaged", "sha256"]
        .iter()
        .filter_map(|k| p.get(k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// What is wrong with the copy of artifact `sha` at `path` (agent.py `_damage`): None when it
/// is whole or absent, else its size and, when the size is right, its sha256.
fn damage(path: &str, sha: &str, size: i64) -> Res<Option<Map>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => return Ok(None),
    };
    if meta.len() as i64 != size {
        return Ok(Some(line(vec![("size", Value::Int(meta.len() as i64))])));
    }
    let actual = hash_file(path)?;
    if actual == sha {
        return Ok(None);
    }
    Ok(Some(line(vec![("size", Value::Int(meta.len() as i64)), ("sha256", actual.as_str().into())])))
}

/// Refuse to use a copy that changed on the host since its upload.
fn refuse_damaged(path: &str, sha: &str, what: &str) -> Res<()> {
    let size = fs::metadata(path).map(|m| m.len() as i64).map_err(io_at(path))?;
    if let Some(damaged) = damage(path, sha, size)? {
        let actual = damaged.get("sha256").cloned().unwrap_or(Value::Null);
        return Err(agent_error_with(
            "damaged",
            format!(
                "{}: changed on the host since its upload (it hashes to {}, its name says {}); refusing to {} it",
                path,
                py_str(&actual),
                sha,
                what
            ),
            vec![("expected", sha.into()), ("actual", actual)],
        ));
    }
    Ok(())
}

/// Point `current` and `previous` of `release` back at these (None: no link); true if done.
fn restore_links(release: &str, current: &Option<String>, previous: &Option<String>) -> bool {
    for (link, target) in [("current", current), ("previous", previous)] {
        let path = join(release, link);
        let done = match target {
            None => match fs::symlink_metadata(&path) {
                Ok(_) => fs::remove_file(&path).is_ok(),
                Err(_) => true,
            },
            Some(target) if link_sha(&path).as_deref() == Some(target.as_str()) => true,
            Some(target) => swap_link(&path, target).is_ok(),
        };
        if !done {
            return false;
        }
    }
    fsync_dir(release);
    true
}

fn op_deploy(req: &Value, layout: &Layout, input: &mut dyn Read) -> Res<Map> {
    let sha = check_name(key(req, "sha256")?, "sha256")?;
    let name = check_name(key(req, "binary_name")?, "binary name")?;
    let size = py_int(key(req, "size")?)?;
    let release = layout.release(&name);
    make_root(&layout.root)?;
    let mut result = line(vec![
        ("sha256", sha.as_str().into()),
        ("binary_name", name.as_str().into()),
        ("uploaded", false.into()),
        ("activated", false.into()),
    ]);
    stage(req, &result, "upload");
    let _lock = Lock::acquire(&layout.lock, lock_timeout(req)?)?;
    mkdirs(&layout.artifacts)?; // under the lock: a cleanup may just have run
    remove_stale_uploads(layout);
    let path = layout.artifact(&sha);
    let mut present = fs::symlink_metadata(&path).is_ok();
    // Every deployment re-hashes the copy it is about to activate and run: one changed on the
    // host since its upload is replaced, not trusted.
    let damaged = if present { damage(&path, &sha, size)? } else { None };
    if let Some(damaged) = &damaged {
        result.insert("damaged", damaged.clone().into());
        present = false;
        let _ = fs::remove_dir_all(join(&layout.unpacked, &sha)); // made from the damaged copy
        progress(&result, "upload");
    }
    let push = truthy(req.get("push"));
    if push && present {
        skip(input, size)?; // sent on spec; the copy here is whole
    } else if !present {
        if !push {
            emit(&line(vec![("agent", "need_upload".into()), ("size", Value::Int(size))]));
        }
        receive(layout, input, &sha, size)?;
        result.insert("uploaded", true.into());
    }
    if truthy(req.get("verify")) {
        // Verify before activation: a bad artifact never becomes current (docs/remote.md).
        stage(req, &result, "verify");
        verify(layout, &sha)?;
        result.insert("verified", true.into());
    }
    let current = join(&release, "current");
    let previous = join(&release, "previous");
    let old = link_sha(&current);
    let before = link_sha(&previous);
    result.insert("previous", opt_str(&old));
    stage(req, &result, "activate");
    let changed = old.as_deref() != Some(sha.as_str());
    if changed {
        // made only here, so every release directory holds a link (agent.py's cleanup)
        mkdirs(&layout.releases)?;
        mkdirs(&release)?;
        if let Some(old) = &old {
            swap_link(&previous, old)?;
        }
        swap_link(&current, &sha)?;
        fsync_dir(&release);
        result.insert("activated", true.into());
        prune_unpacked(layout);
    }
    stage(req, &result, "history");
    let entry = line(vec![
        ("op", "deploy".into()),
        ("deployment_id", req.get("deployment_id").cloned().unwrap_or(Value::Null)),
        ("binary_name", name.as_str().into()),
        ("sha256", sha.as_str().into()),
        ("previous", opt_str(&old)),
        ("changed", changed.into()),
        ("uploaded", result.get("uploaded").cloned().unwrap_or(Value::Bool(false))),
        ("damaged", damaged.map(Value::from).unwrap_or(Value::Null)),
    ]);
    if let Err(fail) = append_history(layout, entry) {
        // history.jsonl must name the current release: put the links back as they were
        if changed && restore_links(&release, &old, &before) {
            result.insert("activated", false.into());
            progress(&result, "history");
        }
        return Err(fail);
    }
    if truthy(req.get("run")) {
        stage(req, &result, "run");
        let code = run_artifact(layout, &path, req)?;
        result.insert("run_exit", Value::Int(code));
    }
    Ok(result)
}

fn opt_str(value: &Option<String>) -> Value {
    match value {
        Some(s) => Value::from(s.as_str()),
        None => Value::Null,
    }
}

fn op_run(req: &Value, layout: &Layout, _input: &mut dyn Read) -> Res<Map> {
    let name = check_name(key(req, "binary_name")?, "binary name")?;
    let current = join(&layout.release(&name), "current");
    if !is_dir(&layout.root) {
        return Err(agent_error(
            "not_deployed",
            format!("{}: no such directory; nothing was deployed here", layout.root),
        ));
    }
    let _lock = Lock::acquire(&layout.lock, lock_timeout(req)?)?;
    let sha = match link_sha(&current) {
        Some(sha) if Path::new(&current).exists() => sha,
        _ => return Err(agent_error("not_deployed", format!("{}: no current release of {}", current, name))),
    };
    if let Some(want) = req.get("sha256").filter(|w| truthy(Some(w))) {
        if want.as_str() != Some(sha.as_str()) {
            return Err(agent_error_with(
                "not_deployed",
                format!("{}: current release is {}, not {}", current, sha, py_str(want)),
                vec![("expected", want.clone()), ("actual", sha.as_str().into())],
            ));
        }
    }
    let path = layout.artifact(&sha);
    refuse_damaged(&path, &sha, "run")?;
    announce(req, "run");
    let code = run_artifact(layout, &path, req)?;
    Ok(line(vec![
        ("sha256", sha.as_str().into()),
        ("binary_name", name.as_str().into()),
        ("run_exit", Value::Int(code)),
    ]))
}

fn op_rollback(req: &Value, layout: &Layout, _input: &mut dyn Read) -> Res<Map> {
    let only = match req.get("binary_name") {
        Some(value) if truthy(Some(value)) => Some(check_name(value, "binary name")?),
        _ => None,
    };
    if !is_dir(&layout.root) {
        return Err(agent_error(
            "not_deployed",
            format!("{}: no such directory; nothing to roll back", layout.root),
        ));
    }
    let _lock = Lock::acquire(&layout.lock, lock_timeout(req)?)?;
    let names = match only {
        Some(name) => vec![name],
        None => sorted_names(&layout.releases),
    };
    let mut done = Map::new();
    for name in names {
        let release = layout.release(&name);
        let current = join(&release, "current");
        let old = link_sha(&current);
        let target = match req.get("rollback_to").filter(|t| truthy(Some(t))) {
            Some(target) => target.clone(),
            None => match link_sha(&join(&release, "previous")) {
                Some(previous) => Value::from(previous),
                None => {
                    return Err(agent_error(
                        "no_previous",
                        format!("{}: no previous release to roll back to", release),
                    ))
                }
            },
        };
        let target = check_name(&target, "sha256")?;
        if !Path::new(&layout.artifact(&target)).is_file() {
            return Err(agent_error(
                "no_previous",
                format!("{}: artifact {} is no longer on the host", layout.artifacts, target),
            ));
        }
        refuse_damaged(&layout.artifact(&target), &target, "roll back to")?;
        let changed = old.as_deref() != Some(target.as_str());
        if changed {
            if let Some(old) = &old {
                swap_link(&join(&release, "previous"), old)?;
            }
            swap_link(&current, &target)?;
            fsync_dir(&release);
        }
        append_history(
            layout,
            line(vec![
                ("op", "rollback".into()),
                ("deployment_id", req.get("deployment_id").cloned().unwrap_or(Value::Null)),
                ("binary_name", name.as_str().into()),
                ("sha256", target.as_str().into()),
                ("previous", opt_str(&old)),
                ("changed", changed.into()),
            ]),
        )?;
        done.insert(&name, line(vec![("sha256", target.as_str().into()), ("previous", opt_str(&old))]).into());
    }
    let mut out = line(vec![("releases", done.clone().into()), ("rolled_back", (!done.is_empty()).into())]);
    if done.len() == 1 {
        if let Some((_, Value::Dict(fields))) = done.iter().next() {
            for (k, v) in fields.iter() {
                out.insert(k, v.clone());
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Cleanup: agent.py's `_OURS`, `_Sweep` and `op_cleanup`, name for name and kind for kind.

const FOREIGN: &str = "not made by rustle-deploy";
const KEPT: &str = "holds entries rustle-deploy did not make";

/// file, dir, symlink or other, without following a symlink; None if it is gone.
fn kind(path: &str) -> Option<&'static str> {
    let meta = fs::symlink_metadata(path).ok()?;
    let file_type = meta.file_type();
    Some(if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "dir"
    } else if file_type.is_file() {
        "file"
    } else {
        "other"
    })
}

/// `s` after `n` leading characters that all satisfy `ok`.
fn skip_n(s: &str, n: usize, ok: fn(u8) -> bool) -> Option<&str> {
    let bytes = s.as_bytes();
    if bytes.len() >= n && bytes[..n].iter().all(|b| ok(*b)) {
        Some(&s[n..])
    } else {
        None
    }
}

fn lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `[0-9]+` in full.
fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(digit)
}

/// `(<sep>[0-9]+)?` in full.
fn opt_tmp(s: &str, sep: &str) -> bool {
    s.is_empty() || s.strip_prefix(sep).map_or(false, all_digits)
}

/// `[0-9a-f]{64}` followed by the rest.
fn hex64(s: &str) -> Option<&str> {
    skip_n(s, 64, lower_hex)
}

/// A rollout's carry id (agent.py's `_CARRY`), followed by the rest:
/// `d-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}(-r-[0-9a-f]{12})?(-h-[0-9a-f]{12})?`.
fn carry(s: &str) -> Option<&str> {
    let s = s.strip_prefix("d-")?;
    let s = skip_n(s, 8, digit)?.strip_prefix('T')?;
    let s = skip_n(s, 6, digit)?.strip_prefix('-')?;
    let mut s = skip_n(s, 6, lower_hex)?;
    for tag in ["-r-", "-h-"] {
        if let Some(rest) = s.strip_prefix(tag).and_then(|r| skip_n(r, 12, lower_hex)) {
            s = rest;
        }
    }
    Some(s)
}

fn release_link(name: &str) -> bool {
    let rest = name.strip_prefix("current").or_else(|| name.strip_prefix("previous"));
    rest.map_or(false, |r| opt_tmp(r, ".tmp-"))
}

/// agent.py's `_CONTROLLER_RUN_ID`: `r-[0-9a-f]{12}`.
fn controller_run_id(name: &str) -> bool {
    name.strip_prefix("r-").and_then(|r| skip_n(r, 12, lower_hex)) == Some("")
}

/// One of agent.py's `_OURS` rules: does `name` match, the kind rustle-deploy writes by it,
/// and what a cleanup does with it.
type Rule = (fn(&str) -> bool, &'static str, &'static str);

/// agent.py's `_OURS[where]`, in its order (the first rule that matches counts).
fn rules(place: &str) -> Vec<Rule> {
    match place {
        "" => vec![
            (|n| n == "artifacts", "dir", "artifacts"),
            (|n| n == "releases", "dir", "releases"),
            (|n| n == "runs", "dir", "runs"),
            (|n| n == "unpacked", "dir", "unpacked"),
            (|n| n == "runners", "dir", "runners"),
            (|n| n == "objects", "dir", "objects"),
            (|n| n == "pyc", "dir", "pyc"),
            (|n| n == "bridge", "dir", "bridge"),
            (|n| n == "history.jsonl", "file", "remove"),
            (|n| n == "lock", "file", "lock"),
            (|n| n == CREATED_MARKER, "file", "marker"),
        ],
        "artifacts" | "objects" => vec![
            (|n| hex64(n) == Some(""), "file", "remove"),
            (
                |n| {
                    n.strip_prefix(".tmp-").and_then(hex64).and_then(|r| r.strip_prefix('-')).map_or(false, all_digits)
                },
                "file",
                "remove",
            ),
        ],
        "releases" => vec![(
            |n| {
                let mut bytes = n.bytes();
                bytes.next().map_or(false, |b| b.is_ascii_alphanumeric() || b == b'_')
                    && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            },
            "dir",
            "release",
        )],
        "release" => vec![(release_link, "symlink", "remove")],
        "runs" => vec![
            (|n| n.len() > ".jsonl".len() && n.ends_with(".jsonl"), "file", "journal"),
            (
                |n| carry(n).and_then(|r| r.strip_prefix(".vars.json")).map_or(false, |r| opt_tmp(r, ".tmp-")),
                "file",
                "remove",
            ),
        ],
        "unpacked" | "pyc" => vec![(|n| hex64(n).map_or(false, |r| opt_tmp(r, ".tmp-")), "dir", "tree")],
        "runners" => vec![(|n| hex64(n).map_or(false, |r| opt_tmp(r, ".tmp.")), "file", "remove")],
        "bridge" => vec![
            (|n| skip_n(n, 16, lower_hex) == Some(""), "other", "server"),
            (|n| skip_n(n, 16, lower_hex) == Some(".log"), "file", "remove"),
        ],
        _ => Vec::new(),
    }
}

/// agent.py's `_Sweep`: what a cleanup removes and leaves under one remote directory; changes
/// nothing itself. `remove` lists (relative path, action) children first; `left` the entries
/// that stay. Directories are only entered when they are real directories.
struct Sweep {
    root: String,
    remove: Vec<(String, &'static str)>,
    left: Vec<Value>,
    lock: bool,
    marker: bool,
    /// Binary names history.jsonl mentions.
    released: Vec<String>,
}

impl Sweep {
    fn new(layout: &Layout) -> Sweep {
        let mut released = Vec::new();
        if kind(&layout.history) == Some("file") {
            for entry in read_history(layout) {
                if entry.as_dict().is_some() {
                    released.push(py_str(entry.get("binary_name").unwrap_or(&Value::Null)));
                }
            }
        }
        Sweep { root: layout.root.clone(), remove: Vec::new(), left: Vec::new(), lock: false, marker: false, released }
    }

    /// `ours`: one of rustle-deploy's directories, kept for what it holds.
    fn leave(&mut self, rel: &str, kind: &str, why: String, ours: bool) {
        let path = if kind == "dir" { format!("{}/", rel) } else { rel.to_string() };
        self.left.push(
            line(vec![("path", path.into()), ("kind", kind.into()), ("why", why.into()), ("ours", Value::Bool(ours))])
                .into(),
        );
    }

    /// Plan the directory `rel` ("" for the root) with the rules of `place`; true when nothing
    /// would be left in it.
    fn walk(&mut self, rel: &str, place: &str) -> Res<bool> {
        let dir = if rel.is_empty() { self.root.clone() } else { join(&self.root, rel) };
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            names.push(entry.map_err(io_at(&dir))?.file_name());
        }
        names.sort_unstable();
        let rules = rules(place);
        let mut empty = true;
        for raw in names {
            let lossy = raw.to_string_lossy().into_owned();
            let path_rel = if rel.is_empty() { lossy.clone() } else { format!("{}/{}", rel, lossy) };
            let name = match raw.to_str() {
                Some(name) => name,
                None => {
                    // Not UTF-8: no name rustle-deploy writes (and not one to build a path from).
                    self.leave(&path_rel, "other", FOREIGN.to_string(), false);
                    empty = false;
                    continue;
                }
            };
            let path = join(&self.root, &path_rel);
            let found = match kind(&path) {
                Some(found) => found,
                None => continue,
            };
            let (want, action) = match rules.iter().find(|rule| (rule.0)(name)) {
                Some(rule) => (rule.1, rule.2),
                None => {
                    self.leave(&path_rel, found, FOREIGN.to_string(), false);
                    empty = false;
                    continue;
                }
            };
            if found != want {
                let why = format!("{} (it writes a {}, not a {}, by this name)", FOREIGN, want, found);
                self.leave(&path_rel, found, why, false);
                empty = false;
            } else if action == "remove" {
                self.remove.push((path_rel, "unlink"));
            } else if action == "tree" {
                self.remove.push((format!("{}/", path_rel), "tree"));
            } else if action == "server" {
                self.remove.push((path_rel, "server"));
            } else if action == "lock" {
                self.lock = true;
            } else if action == "marker" {
                self.marker = true;
            } else if action == "journal" {
                if self.is_journal(&path, &name[..name.len() - ".jsonl".len()]) {
                    self.remove.push((path_rel, "unlink"));
                } else {
                    self.leave(&path_rel, found, format!("{} (not one of its run journals)", FOREIGN), false);
                    empty = false;
                }
            } else if action == "release" && !self.is_release(&path, name)? {
                // A directory by a release's name that holds no release link and that no history
                // line names: not ours (a deploy makes one only to activate). What is in it is
                // still listed, so that the report is the same after a cleanup emptied it.
                self.walk(&path_rel, action)?;
                let why = format!("{} (no release link in it, and no deployment names it)", FOREIGN);
                self.leave(&path_rel, found, why, false);
                empty = false;
            } else if !self.walk(&path_rel, action)? {
                self.leave(&path_rel, found, KEPT.to_string(), true);
                empty = false;
            } else {
                self.remove.push((format!("{}/", path_rel), "rmdir"));
            }
        }
        Ok(empty)
    }

    /// A controller run id, or a file whose first line is that run's run_start event.
    fn is_journal(&self, path: &str, run_id: &str) -> bool {
        if controller_run_id(run_id) {
            return true;
        }
        if kind(path) != Some("file") {
            return false; // agent.py opens it with O_NOFOLLOW
        }
        let mut first = Vec::new();
        let read = File::open(path).and_then(|f| BufReader::new(f.take(1 << 16)).read_until(b'\n', &mut first));
        if read.is_err() {
            return false;
        }
        let parsed = std::str::from_utf8(&first).ok().and_then(|text| json::parse(text.trim()).ok());
        match parsed {
            Some(event) if event.as_dict().is_some() => {
                event.get("event").and_then(Value::as_str) == Some("run_start")
                    && event.get("run_id").and_then(Value::as_str) == Some(run_id)
            }
            _ => false,
        }
    }

    fn is_release(&self, path: &str, name: &str) -> Res<bool> {
        if self.released.iter().any(|r| r == name) {
            return Ok(true);
        }
        for entry in list_dir(path).map_err(io_at(path))? {
            if release_link(&entry) && kind(&join(path, &entry)) == Some("symlink") {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// agent.py's `_end_kept_server`: ask the module bridge's fork server kept at the unix socket
/// `path` to end, then remove the socket if it is still there.
fn end_kept_server(path: &str) -> io::Result<()> {
    use std::os::unix::net::UnixStream;
    if let Ok(mut sock) = UnixStream::connect(path) {
        let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = sock.set_write_timeout(Some(Duration::from_secs(10)));
        let mut first = Vec::new();
        if let Ok(clone) = sock.try_clone() {
            let mut reader = BufReader::new(clone);
            if reader.read_until(b'\n', &mut first).is_ok() {
                let text = std::str::from_utf8(&first).unwrap_or("").trim();
                let hello = json::parse(if text.is_empty() { "{}" } else { text }).ok();
                if hello.as_ref().and_then(|h| h.get("ready")) == Some(&Value::Bool(true))
                    && sock.write_all(b"{\"exit\": true}\n").is_ok()
                {
                    let mut rest = Vec::new();
                    let _ = reader.read_to_end(&mut rest); // it closes the connection as it ends
                }
            }
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn failure(path: &str, err: &io::Error) -> Value {
    line(vec![("path", path.into()), ("error", sys::strerror(err).into())]).into()
}

/// agent.py's `op_cleanup`: remove what rustle-deploy wrote under the remote directory and
/// nothing else; with `dry_run` only say what would go and what would stay. Reply: `removed`
/// (relative paths, directories ending in `/`), `left` (path, kind, why, ours), `failed`,
/// `remote_dir_removed` and `remote_dir_kept` (why not).
fn op_cleanup(req: &Value, layout: &Layout, _input: &mut dyn Read) -> Res<Map> {
    let dry = truthy(req.get("dry_run"));
    let mut removed: Vec<Value> = Vec::new();
    let mut failed: Vec<Value> = Vec::new();
    let mut left: Vec<Value> = Vec::new();
    let mut kept: Option<String> = None;
    let mut dir_removed = false;
    if !is_dir(&layout.root) {
        if kind(&layout.root).is_some() {
            kept = Some("not a directory: nothing of rustle-deploy's can be in it".to_string());
        }
    } else {
        let lock_existed = kind(&layout.lock) == Some("file");
        let lock = Lock::acquire_if(&layout.lock, lock_timeout(req)?, !dry)?;
        let mut sweep = Sweep::new(layout);
        let empty = sweep.walk("", "")?;
        left = std::mem::take(&mut sweep.left);
        for (rel, action) in &sweep.remove {
            let path = join(&layout.root, rel.trim_end_matches('/'));
            let done = if dry {
                Ok(())
            } else if *action == "tree" {
                fs::remove_dir_all(&path)
            } else if *action == "rmdir" {
                fs::remove_dir(&path)
            } else if *action == "server" {
                end_kept_server(&path)
            } else {
                fs::remove_file(&path)
            };
            match done {
                Ok(()) => removed.push(rel.as_str().into()),
                Err(e) => failed.push(failure(rel, &e)),
            }
        }
        if !failed.is_empty() {
            kept = Some("some of rustle-deploy's entries could not be removed".to_string());
        } else if !empty {
            kept = Some("it holds entries rustle-deploy did not make".to_string());
        } else if kind(&layout.root) == Some("symlink") {
            kept = Some("it is a symbolic link; what it points to was cleaned".to_string());
        } else if !sweep.marker {
            kept = Some(format!("rustle-deploy did not create it (it has no {})", CREATED_MARKER));
        }
        // The lock goes last, while we still hold it; the marker only with the directory.
        let last = [("lock", sweep.lock || !dry), (CREATED_MARKER, sweep.marker && kept.is_none())];
        for (name, wanted) in last {
            if !wanted {
                continue;
            }
            let done = if dry { Ok(()) } else { fs::remove_file(join(&layout.root, name)) };
            match done {
                Ok(()) if name != "lock" || lock_existed => removed.push(name.into()),
                Ok(()) => {} // a lock made by this cleanup was never there
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => failed.push(failure(name, &e)),
            }
        }
        drop(lock);
        if kept.is_none() && failed.is_empty() {
            if dry || fs::remove_dir(&layout.root).is_ok() {
                dir_removed = true;
            } else {
                kept = Some("something appeared in it during the cleanup".to_string());
            }
        }
    }
    Ok(line(vec![
        ("remote_dir", layout.root.as_str().into()),
        ("dry_run", Value::Bool(dry)),
        ("removed", Value::List(removed)),
        ("left", Value::List(left)),
        ("failed", Value::List(failed)),
        ("remote_dir_removed", Value::Bool(dir_removed)),
        ("remote_dir_kept", kept.map_or(Value::Null, Value::from)),
    ]))
}

fn op_status(req: &Value, layout: &Layout, _input: &mut dyn Read) -> Res<Map> {
    if !is_dir(&layout.root) {
        return Ok(line(vec![
            ("remote_dir", layout.root.as_str().into()),
            ("releases", Map::new().into()),
            ("artifacts", Value::List(Vec::new())),
            ("history", Value::List(Vec::new())),
        ]));
    }
    // Under the lock: an agent still finishing ends before we read, so the report is settled.
    let _lock = Lock::acquire(&layout.lock, lock_timeout(req)?)?;
    let mut releases = Map::new();
    for name in sorted_names(&layout.releases) {
        let release = layout.release(&name);
        let links = line(vec![
            ("current", opt_str(&link_sha(&join(&release, "current")))),
            ("previous", opt_str(&link_sha(&join(&release, "previous")))),
        ]);
        releases.insert(&name, links.into());
    }
    let artifacts: Vec<Value> = match list_dir(&layout.artifacts) {
        Ok(mut names) => {
            names.retain(|n| !n.starts_with('.'));
            names.sort_unstable();
            names.into_iter().map(Value::from).collect()
        }
        Err(_) => Vec::new(),
    };
    let history = read_history(layout);
    let recent = history[history.len().saturating_sub(20)..].to_vec();
    Ok(line(vec![
        ("remote_dir", layout.root.as_str().into()),
        ("releases", releases.into()),
        ("artifacts", Value::List(artifacts)),
        ("history", Value::List(recent)),
    ]))
}

type Op = fn(&Value, &Layout, &mut dyn Read) -> Res<Map>;

fn find_op(name: Option<&Value>) -> Option<Op> {
    let op: Op = match name.and_then(Value::as_str) {
        Some("deploy") => op_deploy,
        Some("run") => op_run,
        Some("rollback") => op_rollback,
        Some("cleanup") => op_cleanup,
        Some("status") => op_status,
        _ => return None,
    };
    Some(op)
}

// ---------------------------------------------------------------------------------------------
// Entry point

/// Parse the request line and run its op.
fn serve(raw: &[u8], input: &mut dyn Read, req_out: &mut Option<Value>) -> Res<Map> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        Fail::Internal(format!("UnicodeDecodeError: invalid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    let req = json::parse(text).map_err(|e| Fail::Internal(format!("JSONDecodeError: {}", e)))?;
    if req.as_dict().is_none() {
        return Err(Fail::Internal(format!("AttributeError: the request is a {}, not an object", type_name(&req))));
    }
    *req_out = Some(req.clone());
    let op = find_op(req.get("op")).ok_or_else(|| {
        agent_error("request", format!("unknown op {}", py_repr(req.get("op").unwrap_or(&Value::Null))))
    })?;
    let remote_dir = py_str(key(&req, "remote_dir")?);
    check_remote_dir(&remote_dir)?;
    let layout = Layout::new(&remote_dir);
    op(&req, &layout, input)
}

/// The error line for `fail`, as agent.py's `main` writes it, with what the operation had done.
fn error_line(fail: Fail, req: &Option<Value>) -> Map {
    let mut out = line(vec![("agent", "error".into())]);
    for (k, v) in progress_fields() {
        out.insert(&k, v);
    }
    match fail {
        Fail::Agent { kind, message, fields } => {
            out.insert("kind", kind.into());
            out.insert("message", message.into());
            for (k, v) in fields.iter() {
                out.insert(k, v.clone());
            }
        }
        Fail::Io { err, path } => {
            let code = err.raw_os_error();
            let full = code == Some(ENOSPC) || code == Some(EDQUOT);
            let remote_dir = req.as_ref().and_then(|r| r.get("remote_dir")).map(py_str);
            let place = path.or(remote_dir).unwrap_or_else(|| "?".to_string());
            let what = if full { "no space left on the host's disk".to_string() } else { sys::strerror(&err) };
            out.insert("kind", if full { "disk_full" } else { "io" }.into());
            out.insert("message", format!("{}: {}", place, what).into());
        }
        Fail::Internal(message) => {
            out.insert("kind", "internal".into());
            out.insert("message", message.into());
        }
    }
    out
}

/// Serve one request from stdin and exit with the status described in the module docs.
pub fn main() -> ! {
    let start = Instant::now();
    let stdin = ManuallyDrop::new(unsafe { File::from_raw_fd(0) });
    let mut input = BufReader::with_capacity(CHUNK, &*stdin);
    let mut raw = Vec::new();
    let mut req = None;
    let outcome = match input.read_until(b'\n', &mut raw) {
        Ok(_) => serve(&raw, &mut input, &mut req),
        Err(e) => Err(io_plain(e)),
    };
    let mut result = match outcome {
        Ok(result) => result,
        Err(fail) => {
            emit(&error_line(fail, &req));
            exit(EXIT_AGENT_ERROR);
        }
    };
    let (system, machine) = sys::uname();
    let op = req.as_ref().and_then(|r| r.get("op")).cloned().unwrap_or(Value::Null);
    result.insert("agent", "done".into());
    result.insert("op", op);
    result.insert("protocol", Value::Int(AGENT_PROTOCOL));
    result.insert("runner", env!("CARGO_PKG_VERSION").into());
    result.insert("system", system.into());
    result.insert("machine", machine.into());
    result.insert("libc", sys::libc_version().into());
    let duration = (start.elapsed().as_secs_f64() * 1e6).round() / 1e6;
    result.insert("duration", Value::Float(duration));
    emit(&result);
    match result.get("run_exit").and_then(Value::as_i64) {
        Some(code) if code >= 0 => exit(code as i32),
        Some(code) => exit((128 - code) as i32), // killed by a signal: 128+N
        None => exit(0),
    }
}

/// End the process at once: files are closed or fsynced and the lock released by now.
fn exit(code: i32) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> String {
        crate::test_dir("agent", name).to_string_lossy().into_owned()
    }

    #[test]
    fn normpath_and_abspath_like_posixpath() {
        let cases = [
            ("", "."),
            ("/", "/"),
            ("//a", "//a"),
            ("///a", "/a"),
            ("/a/./b/../c/", "/a/c"),
            ("a/../../b", "../b"),
            ("/../x", "/x"),
        ];
        for (path, want) in cases {
            assert_eq!(normpath(path), want, "{}", path);
        }
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(abspath("x/y"), format!("{}/x/y", cwd.display()));
    }

    #[test]
    fn expanduser_uses_home_and_user_entries() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expanduser("~/rd"), format!("{}/rd", home.trim_end_matches('/')));
        assert_eq!(expanduser("~root/rd"), "/root/rd");
        assert_eq!(expanduser("~no-such-user-rr/rd"), "~no-such-user-rr/rd");
        assert_eq!(expanduser("/abs/~"), "/abs/~");
    }

    #[test]
    fn check_name_rejects_paths_and_reports_reprs() {
        assert_eq!(check_name(&Value::from("abc"), "sha256").unwrap(), "abc");
        for bad in ["", ".", "..", "a/b"] {
            match check_name(&Value::from(bad), "binary name") {
                Err(Fail::Agent { kind: "request", message, .. }) => {
                    assert_eq!(message, format!("bad binary name {}", json::py_repr_str(bad)))
                }
                other => panic!("{:?}", other),
            }
        }
        match check_name(&Value::Null, "sha256") {
            Err(Fail::Agent { message, .. }) => assert_eq!(message, "bad sha256 None"),
            other => panic!("{:?}", other),
        }
    }

    #[test]
    fn python_conversions() {
        assert_eq!(py_int(&Value::from("12")).unwrap(), 12);
        assert_eq!(py_int(&Value::Float(3.9)).unwrap(), 3);
        assert_eq!(py_float(&Value::from("inf")).unwrap(), f64::INFINITY);
        assert_eq!(float_str(60.0), "60.0");
        assert_eq!(float_str(f64::INFINITY), "inf");
        match py_int(&Value::Null) {
            Err(Fail::Internal(m)) => assert!(m.starts_with("TypeError: int() argument"), "{}", m),
            other => panic!("{:?}", other),
        }
        assert_eq!(py_str_list(Some(&Value::from("ab"))).unwrap(), vec!["a", "b"]);
        assert_eq!(tail("héllo", 3), "llo");
        assert_eq!(tail("hi", 2000), "hi");
    }

    #[test]
    fn receive_checks_the_hash_and_cleans_up() {
        let root = temp_dir("receive");
        let layout = Layout::new(&root);
        fs::create_dir_all(&layout.artifacts).unwrap();
        let data = b"artifact bytes".to_vec();
        let sha = crate::sha::sha256_hex(&data);
        receive(&layout, &mut &data[..], &sha, data.len() as i64).unwrap();
        let meta = fs::metadata(layout.artifact(&sha)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        match receive(&layout, &mut &data[..4], &sha, data.len() as i64) {
            Err(Fail::Agent { kind: "short_read", message, .. }) => {
                assert_eq!(message, "upload cut after 4 of 14 bytes")
            }
            other => panic!("{:?}", other),
        }
        match receive(&layout, &mut &b"other bytes!!!"[..], &sha, 14) {
            Err(Fail::Agent { kind: "checksum", .. }) => {}
            other => panic!("{:?}", other),
        }
        assert_eq!(list_dir(&layout.artifacts).unwrap(), vec![sha]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lock_times_out_while_another_file_holds_it() {
        use std::os::unix::io::AsRawFd;
        let root = temp_dir("lock");
        let path = join(&root, "lock");
        let held = open_lock(&path, true).unwrap().unwrap();
        sys::flock_exclusive_nb(held.as_raw_fd()).unwrap();
        match Lock::acquire(&path, 0.05) {
            Err(Fail::Agent { kind: "lock_busy", message, .. }) => assert_eq!(
                message,
                format!("{}: another deployment has held the lock for more than 0.05s", path)
            ),
            other => panic!("{:?}", other.map(|_| ())),
        }
        drop(held);
        let lock = Lock::acquire(&path, 0.05).unwrap();
        drop(lock);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn links_and_history() {
        let root = temp_dir("links");
        let layout = Layout::new(&root);
        let release = layout.release("site");
        fs::create_dir_all(&release).unwrap();
        let current = join(&release, "current");
        assert_eq!(link_sha(&current), None);
        swap_link(&current, "aaa").unwrap();
        swap_link(&current, "bbb").unwrap();
        assert_eq!(link_sha(&current).as_deref(), Some("bbb"));
        assert_eq!(fs::read_link(&current).unwrap().to_string_lossy(), "../../artifacts/bbb");
        append_history(&layout, line(vec![("op", "deploy".into()), ("time", Value::Float(1.5))])).unwrap();
        fs::OpenOptions::new().append(true).open(&layout.history).unwrap().write_all(b"{torn").unwrap();
        let history = read_history(&layout);
        assert_eq!(history.len(), 1);
        assert_eq!(fs::read_to_string(&layout.history).unwrap(), "{\"op\": \"deploy\", \"time\": 1.5}\n{torn");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn remote_dirs_like_agent_py() {
        for good in ["~/.rustle", "/var/lib/rustle", "/srv/./r", "~/a b"] {
            assert!(check_remote_dir(good).is_ok(), "{}", good);
        }
        for bad in ["", "  ", "rel/dir", "/", "//", "~", "~/", "~/.", "/a/../b", "/a\nb", "~no-such-user-here/x"] {
            match check_remote_dir(bad) {
                Err(Fail::Agent { kind, .. }) => assert_eq!(kind, "remote_dir", "{:?}", bad),
                other => panic!("{:?}: {:?}", bad, other),
            }
        }
    }

    #[test]
    fn the_remote_dir_is_marked_only_when_made_here() {
        let root = temp_dir("marker");
        let made = join(&root, "made");
        make_root(&made).unwrap();
        assert!(Path::new(&join(&made, CREATED_MARKER)).is_file());
        let existing = join(&root, "existing");
        fs::create_dir_all(&existing).unwrap();
        make_root(&existing).unwrap();
        assert!(!Path::new(&join(&existing, CREATED_MARKER)).exists());
        // A cleanup removes the directory it made, and keeps the one it found.
        let mut empty: &[u8] = b"";
        let out = op_cleanup(&Value::Null, &Layout::new(&existing), &mut empty).unwrap();
        assert_eq!(out.get("remote_dir_removed"), Some(&Value::Bool(false)));
        let why = out.get("remote_dir_kept").and_then(Value::as_str).unwrap();
        assert!(why.starts_with("rustle-deploy did not create it"), "{}", why);
        assert!(Path::new(&existing).is_dir());
        let out = op_cleanup(&Value::Null, &Layout::new(&made), &mut empty).unwrap();
        assert_eq!(out.get("remote_dir_removed"), Some(&Value::Bool(true)));
        assert_eq!(out.get("removed"), Some(&Value::List(vec![CREATED_MARKER.into()])));
        assert!(!Path::new(&made).exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn names_cleanup_may_remove_like_agent_py() {
        let hex = "0123456789abcdef".repeat(4);
        let ours = |place: &str, name: &str| rules(place).iter().find(|r| (r.0)(name)).map(|r| (r.1, r.2));
        assert_eq!(ours("artifacts", &hex), Some(("file", "remove")));
        assert_eq!(ours("artifacts", &format!(".tmp-{}-12", hex)), Some(("file", "remove")));
        assert_eq!(ours("artifacts", &format!(".tmp-{}-", hex)), None);
        assert_eq!(ours("artifacts", &hex.to_uppercase()), None);
        assert_eq!(ours("artifacts", &hex[1..]), None);
        assert_eq!(ours("releases", "app-1.2_x"), Some(("dir", "release")));
        assert_eq!(ours("releases", ".hidden"), None);
        assert_eq!(ours("release", "current.tmp-42"), Some(("symlink", "remove")));
        assert_eq!(ours("release", "current.tmp-"), None);
        assert_eq!(ours("release", "currently"), None);
        assert_eq!(ours("runs", "x.jsonl"), Some(("file", "journal")));
        assert_eq!(ours("runs", ".jsonl"), None);
        let carry = "d-20260101T120000-abcdef-r-0123456789ab-h-0123456789ab.vars.json";
        assert_eq!(ours("runs", carry), Some(("file", "remove")));
        assert_eq!(ours("runs", "d-20260101T120000-abcdef.vars.json.tmp-7"), Some(("file", "remove")));
        assert_eq!(ours("runs", "d-20260101T120000-abcdef-h-0123456789ab-r-0123456789ab.vars.json"), None);
        assert_eq!(ours("unpacked", &format!("{}.tmp-3", hex)), Some(("dir", "tree")));
        assert_eq!(ours("pyc", &format!("{}.tmp-3", hex)), Some(("dir", "tree")));
        assert_eq!(ours("", "pyc"), Some(("dir", "pyc")));
        assert_eq!(ours("runners", &format!("{}.tmp.3", hex)), Some(("file", "remove")));
        assert_eq!(ours("runners", &format!("{}.tmp-3", hex)), None);
        assert!(controller_run_id("r-0123456789ab") && !controller_run_id("r-0123456789abc"));
    }

    #[test]
    fn cleanup_keeps_what_it_did_not_make() {
        let root = temp_dir("cleanup");
        let dir = join(&root, "remote");
        make_root(&dir).unwrap();
        let layout = Layout::new(&dir);
        let hex = "ab".repeat(32);
        mkdirs(&layout.artifacts).unwrap();
        fs::write(layout.artifact(&hex), b"x").unwrap();
        fs::write(join(&layout.artifacts, "notes.txt"), b"mine").unwrap();
        fs::create_dir_all(layout.release("app")).unwrap();
        swap_link(&join(&layout.release("app"), "current"), &hex).unwrap();
        fs::create_dir_all(layout.release("stranger")).unwrap();
        mkdirs(&layout.runs).unwrap();
        fs::write(join(&layout.runs, "r-0123456789ab.jsonl"), b"").unwrap();
        fs::write(join(&layout.runs, "other.jsonl"), b"{\"event\": \"something\"}\n").unwrap();
        fs::write(join(&layout.runs, "mine.jsonl"), b"{\"event\": \"run_start\", \"run_id\": \"mine\"}\n").unwrap();
        let mut empty: &[u8] = b"";
        let req = json::parse("{\"dry_run\": true}").unwrap();
        let dry = op_cleanup(&req, &layout, &mut empty).unwrap();
        assert!(!Path::new(&layout.lock).exists(), "a dry run creates nothing");
        assert!(Path::new(&layout.artifact(&hex)).is_file());
        let out = op_cleanup(&Value::Null, &layout, &mut empty).unwrap();
        assert_eq!(dry.get("removed"), out.get("removed"));
        assert_eq!(dry.get("left"), out.get("left"));
        let removed: Vec<&str> = match out.get("removed") {
            Some(Value::List(items)) => items.iter().filter_map(Value::as_str).collect(),
            other => panic!("{:?}", other),
        };
        let want = ["artifacts/".to_string() + &hex, "releases/app/current".into(), "releases/app/".into(),
                    "runs/mine.jsonl".into(), "runs/r-0123456789ab.jsonl".into()];
        assert_eq!(removed, want.iter().map(String::as_str).collect::<Vec<_>>());
        let left: Vec<String> = match out.get("left") {
            Some(Value::List(items)) => items.iter().map(|i| py_str(i.get("path").unwrap())).collect(),
            other => panic!("{:?}", other),
        };
        assert_eq!(left, ["artifacts/notes.txt", "artifacts/", "releases/stranger/", "releases/", "runs/other.jsonl", "runs/"]);
        assert_eq!(fs::read(join(&layout.artifacts, "notes.txt")).unwrap(), b"mine");
        assert!(Path::new(&join(&dir, CREATED_MARKER)).is_file(), "the marker goes only with the directory");
        assert!(!Path::new(&layout.lock).exists());
        assert_eq!(out.get("remote_dir_kept").and_then(Value::as_str), Some("it holds entries rustle-deploy did not make"));
        fs::remove_dir_all(&root).unwrap();
    }
}
