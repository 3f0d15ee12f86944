//! `file`, `copy` and `template`, and the file-attribute helpers they share with `lineinfile`
//! and `stat`: a port of the Python runtime's `modules/files.py` and `modules/_common.py`
//! (Ansible's semantics, result keys, messages, check mode and diffs).
//!
//! Every content change is an atomic write: a 0600 temp file created with O_EXCL beside the
//! target, the mode applied to it, then a rename over the target (not fsynced, as the Python
//! runtime). Paths are handled as the Python runtime handles them (`os.path` semantics:
//! `expanduser`/`expandvars`, `realpath`, `join`). An OS error the Python runtime does not catch
//! becomes the executor's "Task failed: Module failed: [Errno N] …" message (without the
//! Python traceback).

use std::fs;
use std::io::{self, Read, Write};
use std::os::raw::{c_char, c_int, c_long};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Ctx, ModuleFailure, ModuleResult};
use crate::json::{py_repr_str, type_name, Map, Value};
use crate::paths::{expanduser, normpath};

pub type R<T> = Result<T, ModuleFailure>;

extern "C" {
    fn listxattr(path: *const c_char, list: *mut c_char, size: usize) -> isize;
    fn getxattr(path: *const c_char, name: *const c_char, value: *mut std::os::raw::c_void, size: usize) -> isize;
    fn setxattr(
        path: *const c_char,
        name: *const c_char,
        value: *const std::os::raw::c_void,
        size: usize,
        flags: c_int,
    ) -> c_int;
    fn chown(path: *const c_char, uid: u32, gid: u32) -> c_int;
    fn geteuid() -> u32;
    fn access(path: *const c_char, mode: c_int) -> c_int;
    fn utimensat(dirfd: c_int, path: *const c_char, times: *const Timespec, flags: c_int) -> c_int;
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: c_long,
}

const AT_FDCWD: c_int = -100;
const AT_SYMLINK_NOFOLLOW: c_int = 0x100;
pub const R_OK: c_int = 4;
pub const W_OK: c_int = 2;
pub const X_OK: c_int = 1;

// ------------------------------------------------------------------------ Python value helpers

/// Python's `repr(value)` for JSON values.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Str(s) => py_repr_str(s),
        Value::List(items) => format!("[{}]", items.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Dict(map) => format!("{{{}}}", map.iter().map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v))).collect::<Vec<_>>().join(", ")),
        other => py_str(other),
    }
}

/// Python's `str(value)` for JSON values.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => crate::json::float_repr(*f),
        Value::Str(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python truthiness.
pub use crate::json::truthy as py_truthy;

/// A map from key/value pairs (for results and failure details).
pub fn map(pairs: Vec<(&str, Value)>) -> Map {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k, v);
    }
    m
}

pub fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(ModuleFailure::new(msg))
}

pub fn fail_with<T>(msg: impl Into<String>, pairs: Vec<(&str, Value)>) -> R<T> {
    Err(ModuleFailure::with(msg, map(pairs)))
}

/// Ansible's boolean conversion (`_common.boolean`).
pub fn boolean(value: &Value, name: &str) -> R<bool> {
    match value {
        Value::Bool(b) => return Ok(*b),
        Value::Null => return Ok(false),
        Value::Int(0) => return Ok(false),
        Value::Int(1) => return Ok(true),
        Value::Float(f) if *f == 0.0 || *f == 1.0 => return Ok(*f == 1.0),
        _ => {}
    }
    let text = py_str(value).trim().to_lowercase();
    match text.as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Ok(true),
        "n" | "no" | "off" | "0" | "false" | "f" | "" => Ok(false),
        _ => fail(format!(
            "argument '{}' is of type {} and we were unable to convert to bool: The value '{}' is not a valid boolean.",
            name,
            type_name(value),
            py_str(value)
        )),
    }
}

/// `boolean(args.get(name, default), name)`: an explicit null is false, as in Python.
pub fn arg_bool(args: &Map, name: &str, default: bool) -> R<bool> {
    match args.get(name) {
        None => Ok(default),
        Some(v) => boolean(v, name),
    }
}

/// `args.get(name)` with null as absent.
pub fn arg<'a>(args: &'a Map, name: &str) -> Option<&'a Value> {
    args.get(name).filter(|v| !v.is_null())
}

/// The first of `names` present and not null (an option and its aliases).
pub fn pop_arg<'a>(args: &'a Map, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| arg(args, n))
}

/// Fail on parameters Ansible's argument spec would reject (`_common.check_unknown`).
pub fn check_unknown(args: &Map, allowed: &[&str], module: &str) -> R<()> {
    let mut extra: Vec<&str> = args.iter().map(|(k, _)| k.as_str()).filter(|k| !allowed.contains(k) && !k.starts_with('_')).collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    let mut all = allowed.to_vec();
    all.sort_unstable();
    fail(format!("Unsupported parameters for ({}) module: {}. Supported parameters include: {}.", module, extra.join(", "), all.join(", ")))
}

/// `str(OSError)`: `[Errno 2] No such file or directory: '/path'`.
pub fn os_error_text(err: &io::Error, path: &str) -> String {
    match err.raw_os_error() {
        Some(code) => format!("[Errno {}] {}: {}", code, crate::sys::strerror(err), py_repr_str(path)),
        None => err.to_string(),
    }
}

/// An OS error the Python module does not catch, as the executor reports it.
pub fn os_failure(err: io::Error, path: &str) -> ModuleFailure {
    ModuleFailure::new(format!("Task failed: Module failed: {}", os_error_text(&err, path)))
}

trait OrFail<T> {
    fn or_fail(self, path: &str) -> R<T>;
}

impl<T> OrFail<T> for io::Result<T> {
    fn or_fail(self, path: &str) -> R<T> {
        self.map_err(|e| os_failure(e, path))
    }
}

// ------------------------------------------------------------------------------------ paths

fn cpath(path: &str) -> std::ffi::CString {
    std::ffi::CString::new(path.as_bytes()).unwrap_or_default()
}

pub fn stat(path: &str) -> Option<fs::Metadata> {
    fs::metadata(path).ok()
}

pub fn lstat(path: &str) -> Option<fs::Metadata> {
    fs::symlink_metadata(path).ok()
}

pub fn exists(path: &str) -> bool {
    stat(path).is_some()
}

pub fn lexists(path: &str) -> bool {
    lstat(path).is_some()
}

pub fn isdir(path: &str) -> bool {
    stat(path).map_or(false, |m| m.is_dir())
}

pub fn isfile(path: &str) -> bool {
    stat(path).map_or(false, |m| m.is_file())
}

pub fn islink(path: &str) -> bool {
    lstat(path).map_or(false, |m| m.file_type().is_symlink())
}

/// `os.access(path, mode)`.
pub fn can_access(path: &str, mode: c_int) -> bool {
    let c = cpath(path);
    unsafe { access(c.as_ptr(), mode) == 0 }
}

/// `os.path.join(a, b)`.
pub fn join(a: &str, b: &str) -> String {
    if b.starts_with('/') || a.is_empty() {
        b.to_string()
    } else if a.ends_with('/') {
        format!("{}{}", a, b)
    } else {
        format!("{}/{}", a, b)
    }
}

/// `os.path.dirname`.
pub fn dirname(p: &str) -> String {
    let head = &p[..p.rfind('/').map_or(0, |i| i + 1)];
    if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

/// `os.path.basename`.
pub fn basename(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

/// `os.path.abspath`.
pub fn abspath(path: &str) -> String {
    if path.starts_with('/') {
        return normpath(path);
    }
    let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    normpath(&join(&cwd, path))
}

/// `os.path.realpath` (non-strict: missing components are kept, a symlink loop stays as is).
pub fn realpath(path: &str) -> String {
    let mut seen: Vec<(String, Option<String>)> = Vec::new();
    abspath(&join_realpath(String::new(), path, &mut seen).0)
}

fn join_realpath(mut path: String, rest: &str, seen: &mut Vec<(String, Option<String>)>) -> (String, bool) {
    let mut rest = rest.to_string();
    if rest.starts_with('/') {
        rest.remove(0);
        path = "/".to_string();
    }
    while !rest.is_empty() {
        let (name, tail) = match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i + 1..].to_string()),
            None => (rest.clone(), String::new()),
        };
        rest = tail;
        if name.is_empty() || name == "." {
            continue;
        }
        if name == ".." {
            if path.is_empty() {
                path = "..".to_string();
            } else {
                let last = basename(&path).to_string();
                path = dirname_keep(&path);
                if last == ".." {
                    path = join(&join(&path, ".."), "..");
                }
            }
            continue;
        }
        let newpath = join(&path, &name);
        if !islink(&newpath) {
            path = newpath;
            continue;
        }
        if let Some((_, resolved)) = seen.iter().find(|(p, _)| *p == newpath) {
            match resolved {
                Some(r) => {
                    path = r.clone();
                    continue;
                }
                None => return (join(&newpath, &rest), false),
            }
        }
        seen.push((newpath.clone(), None));
        let target = fs::read_link(&newpath).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
        let (resolved, ok) = join_realpath(path, &target, seen);
        if !ok {
            return (join(&resolved, &rest), false);
        }
        if let Some(entry) = seen.iter_mut().find(|(p, _)| *p == newpath) {
            entry.1 = Some(resolved.clone());
        }
        path = resolved;
    }
    (path, true)
}

/// `os.path.split(path)[0]`: the head with trailing slashes removed unless it is all slashes.
fn dirname_keep(path: &str) -> String {
    dirname(path)
}

/// `os.path.expandvars` (POSIX): `$name` and `${name}` from the process environment.
pub fn expandvars(path: &str) -> String {
    if !path.contains('$') {
        return path.to_string();
    }
    let mut out = path.to_string();
    let mut i = 0;
    while let Some(off) = out[i..].find('$') {
        let start = i + off;
        let after = &out[start + 1..];
        let (name, len) = if after.starts_with('{') {
            match after.find('}') {
                Some(end) => (after[1..end].to_string(), end + 1),
                None => {
                    i = start + 1;
                    continue;
                }
            }
        } else {
            let n = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            if n == 0 {
                i = start + 1;
                continue;
            }
            (after[..n].to_string(), n)
        };
        let end = start + 1 + len;
        match std::env::var(&name) {
            Ok(value) if !name.is_empty() => {
                let tail = out[end..].to_string();
                out.truncate(start);
                out.push_str(&value);
                i = out.len();
                out.push_str(&tail);
            }
            _ => i = end,
        }
    }
    out
}

/// `_common.expand`: `expanduser(expandvars(str(path)))`.
pub fn expand(path: &Value) -> String {
    expanduser(&expandvars(&py_str(path)))
}

// --------------------------------------------------------------------------------- checksums

pub fn sha1_hex(data: &[u8]) -> String {
    crate::sha::sha1_hex(data)
}

/// The hex digest of a file with `algorithm` ("sha1" or "sha256").
pub fn checksum_file(path: &str, algorithm: &str) -> R<String> {
    let mut file = fs::File::open(path).or_fail(path)?;
    let mut buf = vec![0u8; 65536];
    let mut sha1 = crate::sha::Sha1::new();
    let mut sha256 = crate::sha::Sha256::new();
    loop {
        let n = file.read(&mut buf).or_fail(path)?;
        if n == 0 {
            break;
        }
        if algorithm == "sha256" {
            sha256.update(&buf[..n]);
        } else {
            sha1.update(&buf[..n]);
        }
    }
    Ok(if algorithm == "sha256" { sha256.hex() } else { sha1.hex() })
}

/// MD5 (RFC 1321) hex digest: copy and template report `md5sum` as Ansible does.
pub fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4,
        11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64).map(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32).collect();
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk.chunks(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a.wrapping_add(f).wrapping_add(k[i]).wrapping_add(m[g]).rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    state.iter().flat_map(|s| s.to_le_bytes()).map(|b| format!("{:02x}", b)).collect()
}

// ------------------------------------------------------------------------------------ writes

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

/// `lowlevel.mkstemp`: a new 0600 file `directory/prefix<12 hex>`, created with O_EXCL; the
/// error comes with the path it was about.
fn mkstemp(directory: &str, prefix: &str) -> Result<(fs::File, String), (io::Error, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut last = None;
    for _ in 0..100 {
        let path = join(directory, &format!("{}{}", prefix, random_suffix()));
        match fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err((e, path)),
        }
    }
    Err((last.unwrap_or_else(|| io::Error::from_raw_os_error(17)), join(directory, prefix)))
}

pub fn current_umask() -> u32 {
    let mask = crate::sys::umask(0);
    crate::sys::umask(mask);
    mask
}

fn chmod(path: &str, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn c_chown(path: &str, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(path);
    if unsafe { chown(c.as_ptr(), uid, gid) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `_common.atomic_write(path, data, validate, mode=mode)`: temp file beside `path`, checked
/// by `validate` (the task's environment and the command, `%s` the temp file) when given, the
/// existing file's mode/owner (or 0666 & ~umask), the task's mode, then a rename over `path`.
pub fn atomic_write(path: &str, data: &[u8], mode: Option<&Value>, validate: Option<(&Map, &str)>) -> R<()> {
    let directory = dirname(&abspath(path));
    let directory = if directory.is_empty() { ".".to_string() } else { directory };
    // as Ansible's atomic_move when the user may not create a file there (`_common._temp_beside`)
    let (mut file, tmp) = mkstemp(&directory, ".rustle_tmp_").map_err(|(e, tmp)| {
        ModuleFailure::new(format!(
            "The destination directory {} is not writable by the current user: {}",
            py_repr_str(&dirname(path)),
            os_error_text(&e, &tmp)
        ))
    })?;
    let outcome = (|| {
        file.write_all(data).or_fail(&tmp)?;
        drop(file);
        if let Some((environment, command)) = validate {
            super::command::run_validate(environment, command, &tmp, false)?;
        }
        adopt_attributes(&tmp, path)?;
        if let Some(mode) = mode.filter(|m| m.as_str() != Some("preserve")) {
            let bits = parse_mode(mode, stat(path).as_ref())?;
            chmod(&tmp, bits).or_fail(&tmp)?;
        }
        fs::rename(&tmp, path).map_err(|e| ModuleFailure::new(format!("Task failed: Module failed: {}", rename_error(&e, &tmp, path))))
    })();
    if outcome.is_err() && lexists(&tmp) {
        let _ = fs::remove_file(&tmp);
    }
    outcome
}

fn rename_error(err: &io::Error, from: &str, to: &str) -> String {
    format!("[Errno {}] {}: {} -> {}", err.raw_os_error().unwrap_or(0), crate::sys::strerror(err), py_repr_str(from), py_repr_str(to))
}

/// Ansible's `atomic_move` before the rename: `tmp` takes the mode and owner of `path`, or
/// 0666 & ~umask when there is none.
pub fn adopt_attributes(tmp: &str, path: &str) -> R<()> {
    match stat(path) {
        None => chmod(tmp, 0o666 & !current_umask()).or_fail(tmp),
        Some(st) => {
            chmod(tmp, st.mode() & 0o7777).or_fail(tmp)?;
            if unsafe { geteuid() } == 0 {
                let _ = c_chown(tmp, st.uid(), st.gid());
            }
            copy_xattrs(path, tmp);
            Ok(())
        }
    }
}

/// shutil.copystat's `_copyxattr` (atomic_move's): every extended attribute of `src` onto
/// `dst`, POSIX ACLs among them (lineinfile's "doesn't delete extended acls"); what cannot be
/// read or set is left, as shutil leaves it.
fn copy_xattrs(src: &str, dst: &str) {
    let (s, d) = match (std::ffi::CString::new(src), std::ffi::CString::new(dst)) {
        (Ok(s), Ok(d)) => (s, d),
        _ => return,
    };
    let size = unsafe { listxattr(s.as_ptr(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return;
    }
    let mut names = vec![0u8; size as usize];
    let size = unsafe { listxattr(s.as_ptr(), names.as_mut_ptr() as *mut c_char, names.len()) };
    if size <= 0 {
        return;
    }
    for name in names[..size as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = match std::ffi::CString::new(name) {
            Ok(name) => name,
            Err(_) => continue,
        };
        let len = unsafe { getxattr(s.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            continue;
        }
        let mut value = vec![0u8; len as usize];
        let len = unsafe { getxattr(s.as_ptr(), name.as_ptr(), value.as_mut_ptr() as *mut _, value.len()) };
        if len >= 0 {
            unsafe { setxattr(d.as_ptr(), name.as_ptr(), value.as_ptr() as *const _, len as usize, 0) };
        }
    }
}

/// Ansible's backup: `path.<pid>.<YYYY-MM-DD@HH:MM:SS>~`, a copy keeping mode, times and
/// owner; only the name in check mode. "" when `path` does not exist.
pub fn backup_local(check: bool, path: &str) -> R<String> {
    if !exists(path) {
        return Ok(String::new());
    }
    // sys::local_timestamp() is "%Y%m%dT%H%M%S"; Ansible's backup suffix is "%Y-%m-%d@%H:%M:%S~"
    let t = crate::sys::local_timestamp();
    let stamp = format!("{}-{}-{}@{}:{}:{}~", &t[0..4], &t[4..6], &t[6..8], &t[9..11], &t[11..13], &t[13..15]);
    let dest = format!("{}.{}.{}", path, crate::sys::getpid(), stamp);
    if !check {
        fs::copy(path, &dest).or_fail(path)?;
        let st = stat(path).ok_or_else(|| os_failure(io::Error::from_raw_os_error(2), path))?;
        set_times(&dest, float_time(st.atime(), st.atime_nsec()), float_time(st.mtime(), st.mtime_nsec()), true).or_fail(&dest)?;
        let _ = c_chown(&dest, st.uid(), st.gid());
    }
    Ok(dest)
}

/// `os.stat` float times: `sec + nsec * 1e-9`.
pub fn float_time(sec: i64, nsec: i64) -> f64 {
    sec as f64 + nsec as f64 * 1e-9
}

/// `os.utime(path, (atime, mtime), follow_symlinks=follow)` with Python's float rounding.
fn set_times(path: &str, atime: f64, mtime: f64, follow: bool) -> io::Result<()> {
    let ts = |t: f64| {
        let int = t.trunc();
        let mut frac = ((t - int) * 1e9).floor();
        let mut sec = int;
        if frac >= 1e9 {
            frac -= 1e9;
            sec += 1.0;
        } else if frac < 0.0 {
            frac += 1e9;
            sec -= 1.0;
        }
        Timespec { sec: sec as i64, nsec: frac as c_long }
    };
    let times = [ts(atime), ts(mtime)];
    let c = cpath(path);
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    if unsafe { utimensat(AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ------------------------------------------------------------------------------------- modes

/// Python's `int(text, 8)`: optional sign and `0o` prefix, underscores between digits.
fn parse_octal(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = if t.len() > 1 && (t.starts_with("0o") || t.starts_with("0O")) { t[2..].strip_prefix('_').unwrap_or(&t[2..]) } else { t };
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let mut value: i64 = 0;
    for b in t.bytes().filter(|b| *b != b'_') {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add((b - b'0') as i64)?;
    }
    Some(if neg { -value } else { value })
}

/// `_common.parse_mode`: an int as is, an octal string, or a symbolic mode applied to `current`.
pub fn parse_mode(mode: &Value, current: Option<&fs::Metadata>) -> R<u32> {
    match mode {
        Value::Bool(_) => return fail_with("mode must be in octal or symbolic form", vec![("details", py_str(mode).into())]),
        Value::Int(n) => {
            return u32::try_from(*n).map_err(|_| ModuleFailure::new(format!("mode {} is out of range for the native runner", n)));
        }
        _ => {}
    }
    let text = py_str(mode);
    let value = match parse_octal(&text) {
        Some(v) => v,
        None => match symbolic_mode_to_octal(current, &text) {
            Ok(v) => v as i64,
            Err(e) => return fail_with("mode must be in octal or symbolic form", vec![("details", e.into())]),
        },
    };
    if value != value & 0o7777 {
        return fail_with("Invalid mode supplied, only permission info is allowed", vec![("details", Value::Int(value))]);
    }
    Ok(value as u32)
}

/// `re.match(r"^[set]*$", text)`: `$` also matches before one final newline.
fn only_chars(text: &str, set: &str) -> bool {
    text.strip_suffix('\n').unwrap_or(text).chars().all(|c| set.contains(c))
}

fn symbolic_mode_to_octal(current: Option<&fs::Metadata>, symbolic: &str) -> Result<u32, String> {
    let (mut mode, is_dir) = current.map_or((0, false), |m| (m.mode() & 0o7777, m.is_dir()));
    for clause in symbolic.split(',') {
        let ops: Vec<char> = clause.chars().filter(|c| "+=-".contains(*c)).collect();
        let mut parts: Vec<&str> = clause.split(|c| "+=-".contains(c)).collect();
        let users = parts.remove(0);
        let use_umask = users.is_empty();
        let users = if users == "a" || users.is_empty() { "ugo" } else { users };
        let bad = || format!("bad symbolic permission for mode: {}", clause);
        if ops.is_empty() || !only_chars(users, "ugoa") {
            return Err(bad());
        }
        for (perms, op) in parts.iter().zip(ops) {
            if !only_chars(perms, "rwxXstugo") {
                return Err(bad());
            }
            for user in users.chars().filter(|c| *c != '\n') {
                if user == 'a' {
                    return Err(format!("symbolic mode {:?}: 'a' combined with other users is not supported by the native runner (the Python runtime fails with KeyError)", clause));
                }
                let bits = perm_bits(user, perms, use_umask, mode, is_dir);
                mode = apply_operator(user, op, bits, mode);
            }
        }
    }
    Ok(mode)
}

fn perm_bits(user: char, perms: &str, use_umask: bool, prev: u32, is_dir: bool) -> u32 {
    let rev = current_umask() ^ 0o7777;
    let x_ok = is_dir || prev & 0o111 > 0;
    let (u, g, o) = (prev & 0o700, prev & 0o070, prev & 0o007);
    let mut bits = 0;
    for perm in perms.chars().filter(|c| *c != '\n') {
        let value = match (user, perm) {
            ('u', 'r') => 0o400,
            ('u', 'w') => 0o200,
            ('u', 'x') => 0o100,
            ('u', 's') => 0o4000,
            ('u', 'u') => u,
            ('u', 'g') => g << 3,
            ('u', 'o') => o << 6,
            ('u', 'X') if x_ok => 0o100,
            ('g', 'r') => 0o040,
            ('g', 'w') => 0o020,
            ('g', 'x') => 0o010,
            ('g', 's') => 0o2000,
            ('g', 'u') => u >> 3,
            ('g', 'g') => g,
            ('g', 'o') => o << 3,
            ('g', 'X') if x_ok => 0o010,
            ('o', 'r') => 0o004,
            ('o', 'w') => 0o002,
            ('o', 'x') => 0o001,
            ('o', 't') => 0o1000,
            ('o', 'u') => u >> 6,
            ('o', 'g') => g >> 3,
            ('o', 'o') => o,
            ('o', 'X') if x_ok => 0o001,
            _ => 0,
        };
        bits |= if use_umask && "rwx".contains(perm) { value & rev } else { value };
    }
    bits
}

fn apply_operator(user: char, op: char, bits: u32, current: u32) -> u32 {
    match op {
        '=' => {
            let mask = match user {
                'u' => 0o4700,
                'g' => 0o2070,
                _ => 0o1007,
            };
            (current & (mask ^ 0o7777)) | bits
        }
        '+' => current | bits,
        _ => current - (current & bits),
    }
}

/// `f"0{mode:03o}"`.
pub fn mode_text(mode: u32) -> String {
    format!("0{:03o}", mode)
}

// ------------------------------------------------------------------------- owners and groups

/// Python's `int(text)` for decimal strings (sign, surrounding whitespace, underscores).
fn parse_decimal(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-'].as_ref()).unwrap_or(t);
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    t.replace('_', "").parse().ok()
}

fn numeric_id(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::Bool(b) => Some(*b as i64),
        Value::Float(f) => Some(f.trunc() as i64),
        other => parse_decimal(&py_str(other)),
    }
}

fn owner_id(value: &Value, what: &str, lookup: fn(&str) -> Option<u32>) -> R<u32> {
    let (verb, noun) = if what == "user" { ("chown", "user") } else { ("chgrp", "group") };
    if let Some(n) = numeric_id(value) {
        return u32::try_from(n).map_err(|_| ModuleFailure::new(format!("{} failed: {} id {} is out of range", verb, noun, n)));
    }
    lookup(&py_str(value)).ok_or_else(|| ModuleFailure::new(format!("{} failed: failed to look up {} {}", verb, noun, py_str(value))))
}

pub fn user_name(uid: u32) -> String {
    crate::sys::user_name(uid).unwrap_or_else(|| uid.to_string())
}

pub fn group_name(gid: u32) -> String {
    crate::sys::group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// `_common._diff_set`: record a before/after pair in a diff dict.
pub fn diff_set(diff: Option<&mut Map>, key: &str, before: Value, after: Value) {
    if let Some(diff) = diff {
        for (side, value) in [("before", before), ("after", after)] {
            if !diff.contains_key(side) {
                diff.insert(side, Value::Dict(Map::new()));
            }
            if let Some(Value::Dict(m)) = diff.get_mut(side) {
                m.insert(key, value);
            }
        }
    }
}

/// Requested attributes of a path (`mode`, `owner`, `group` task arguments).
#[derive(Clone, Copy)]
pub struct Attrs<'a> {
    pub mode: Option<&'a Value>,
    pub owner: Option<&'a Value>,
    pub group: Option<&'a Value>,
}

impl<'a> Attrs<'a> {
    pub fn from_args(args: &'a Map) -> Attrs<'a> {
        Attrs { mode: arg(args, "mode"), owner: arg(args, "owner"), group: arg(args, "group") }
    }
}

/// `_common.apply_attributes`: owner, group, then mode; true when something (would) change.
pub fn apply_attributes(check: bool, path: &str, attrs: Attrs, mut diff: Option<&mut Map>, follow: bool) -> R<bool> {
    if attrs.mode.is_none() && attrs.owner.is_none() && attrs.group.is_none() {
        return Ok(false);
    }
    if check && !lexists(path) {
        return Ok(true);
    }
    let st = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) }.or_fail(path)?;
    let mut changed = false;
    if let Some(owner) = attrs.owner {
        let uid = owner_id(owner, "user", crate::sys::user_id)?;
        if st.uid() != uid {
            diff_set(diff.as_deref_mut(), "owner", Value::Int(st.uid() as i64), Value::Int(uid as i64));
            changed = true;
            if !check {
                change_owner(path, Some(uid), None, follow)?;
            }
        }
    }
    if let Some(group) = attrs.group {
        let gid = owner_id(group, "group", crate::sys::group_id)?;
        if st.gid() != gid {
            diff_set(diff.as_deref_mut(), "group", Value::Int(st.gid() as i64), Value::Int(gid as i64));
            changed = true;
            if !check {
                change_owner(path, None, Some(gid), follow)?;
            }
        }
    }
    if let Some(mode) = attrs.mode {
        if st.file_type().is_symlink() {
            // Linux has no lchmod: a symlink's own permissions cannot change (Ansible skips).
            return Ok(changed);
        }
        let new_mode = parse_mode(mode, Some(&st))?;
        let prev = st.mode() & 0o7777;
        if prev != new_mode {
            diff_set(diff, "mode", mode_text(prev).into(), mode_text(new_mode).into());
            changed = true;
            if !check {
                if let Err(e) = chmod(path, new_mode) {
                    return fail_with(format!("chmod failed: {}", os_error_text(&e, path)), vec![("path", path.into())]);
                }
            }
        }
    }
    Ok(changed)
}

fn change_owner(path: &str, uid: Option<u32>, gid: Option<u32>, follow: bool) -> R<()> {
    let outcome = if follow { c_chown(path, uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) } else { crate::sys::lchown(Path::new(path), uid, gid) };
    outcome.or_else(|e| fail_with(format!("chown failed: {}", os_error_text(&e, path)), vec![("path", path.into())]))
}

/// `_common.path_info`: path, then uid, gid, owner, group, mode, state, size (or state absent).
pub fn path_info(path: &str, follow: bool) -> Map {
    let mut info = map(vec![("path", path.into())]);
    let st = if follow { stat(path) } else { lstat(path) };
    let (st, lst) = match (st, lstat(path)) {
        (Some(st), Some(lst)) => (st, lst),
        _ => {
            info.insert("state", "absent".into());
            return info;
        }
    };
    let state = if lst.file_type().is_symlink() {
        "link"
    } else if st.is_dir() {
        "directory"
    } else if st.nlink() > 1 {
        "hard"
    } else {
        "file"
    };
    info.insert("uid", Value::Int(st.uid() as i64));
    info.insert("gid", Value::Int(st.gid() as i64));
    info.insert("owner", user_name(st.uid()).into());
    info.insert("group", group_name(st.gid()).into());
    info.insert("mode", mode_text(st.mode() & 0o7777).into());
    info.insert("state", state.into());
    info.insert("size", Value::Int(st.size() as i64));
    info
}

/// Text of file bytes for a diff (invalid UTF-8 becomes U+FFFD; Python keeps surrogate escapes).
pub fn to_text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// `_common.file_diff`: before/after text with headers.
pub fn file_diff(before: &[u8], after: &[u8], before_header: &str, after_header: &str) -> Value {
    Value::Dict(map(vec![
        ("before", to_text(before).into()),
        ("after", to_text(after).into()),
        ("before_header", before_header.into()),
        ("after_header", after_header.into()),
    ]))
}

/// The copy action's diff (files.py `_diff`): `before_header` only when `dest` existed;
/// `after_header` the source as written, or `dest` for `content`.
fn copy_diff(before: Option<&[u8]>, after: &[u8], dest: &str, label: &str) -> Value {
    let after_header = if label == "content" { dest } else { label };
    let mut diff = file_diff(before.unwrap_or(b""), after, dest, after_header);
    if before.is_none() {
        if let Value::Dict(d) = &mut diff {
            d.remove("before_header");
        }
    }
    diff
}

// ---------------------------------------------------------------------- copy and template

const COPY_ARGS: &[&str] = &[
    "src", "content", "dest", "mode", "owner", "group", "backup", "force", "directory_mode", "remote_src", "validate", "checksum", "follow", "local_follow",
    "decrypt", "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel",
];

const TEMPLATE_ARGS: &[&str] = &[
    "src", "dest", "mode", "owner", "group", "backup", "force", "newline_sequence", "validate", "follow", "trim_blocks", "lstrip_blocks", "block_start_string",
    "block_end_string", "variable_start_string", "variable_end_string", "comment_start_string", "comment_end_string", "output_encoding", "unsafe_writes",
    "attributes", "seuser", "serole", "setype", "selevel",
];

/// `files._validate_with_attrs`: `validate` run on a temp copy of `data` beside `dest` that
/// carries the task's mode, removed afterwards; copy's short message when it fails.
fn validate_with_attrs(ctx: &Ctx, data: &[u8], dest: &str, validate: &str, mode: Option<&Value>) -> R<()> {
    let (mut file, tmp) = mkstemp(&dirname(&abspath(dest)), ".rustle_validate_").map_err(|(e, tmp)| os_failure(e, &tmp))?;
    let outcome = (|| {
        file.write_all(data).or_fail(&tmp)?;
        drop(file);
        if let Some(mode) = mode.filter(|m| !m.is_null()) {
            let bits = parse_mode(mode, stat(&tmp).as_ref())?;
            chmod(&tmp, bits).or_fail(&tmp)?;
        }
        super::command::run_validate(ctx.environment, validate, &tmp, true)
    })();
    let _ = fs::remove_file(&tmp);
    outcome
}

/// An embedded `src` (`{"sha256": hex, "path": "src as written"}`): its bytes and its label.
fn embedded(ctx: &Ctx, src: &Value) -> R<(Vec<u8>, String)> {
    let sha = src.get("sha256").and_then(Value::as_str);
    let label = src.get("path").and_then(Value::as_str);
    match (sha, label) {
        (Some(sha), Some(label)) => Ok((ctx.file_bytes(sha).map_err(ModuleFailure::new)?, label.to_string())),
        _ => fail(format!(
            "src must be {{\"sha256\": …, \"path\": <src as written>}} for the native runner, got {}",
            crate::json::to_string(src)
        )),
    }
}

/// ansible.builtin.copy: `content`, an embedded `src`, or `remote_src`.
pub fn copy(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, COPY_ARGS, "copy")?;
    let (src, content) = (arg(args, "src"), arg(args, "content"));
    if src.is_none() && content.is_none() {
        return fail("src (or content) is required");
    }
    if src.is_some() && content.is_some() {
        return fail("src and content are mutually exclusive");
    }
    if arg_bool(args, "remote_src", false)? {
        return copy_remote(ctx, args);
    }
    let (data, label) = match content {
        Some(Value::Str(s)) => (s.clone().into_bytes(), "content".to_string()),
        // Ansible's copy action: JSON for a dict or list, str() for the rest (True, 0)
        Some(other @ (Value::Dict(_) | Value::List(_))) => (crate::json::to_string_ascii(other).into_bytes(), "content".to_string()),
        Some(other) => (crate::json::py_str(other).into_bytes(), "content".to_string()),
        None => embedded(ctx, src.unwrap_or(&Value::Null))?,
    };
    let mut args = args.clone();
    if let Some(dest) = arg(&args, "dest").map(py_str) {
        args.insert("dest", crate::paths::expand_user_home(&dest).into());
    }
    if arg(&args, "mode").and_then(Value::as_str) == Some("preserve") {
        args.insert("mode", Value::Null); // the source's mode is not embedded; keep the default
        ctx.warnings.push("copy: mode=preserve keeps the default mode for embedded sources".to_string());
    }
    write_content(ctx, &args, &data, &label, "copy", true)
}

fn copy_remote(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    let src = expand(arg(args, "src").unwrap_or(&Value::Null));
    if !exists(&src) {
        return fail(format!("Source {} not found", src));
    }
    if !can_access(&src, R_OK) {
        return fail(format!("Source {} not readable", src));
    }
    if isdir(&src) {
        return fail(format!("copy: remote_src with a directory ({}) is not supported by the native runner", src));
    }
    let mut args = args.clone();
    if arg(&args, "mode").and_then(Value::as_str) == Some("preserve") {
        let bits = stat(&src).map_or(0, |m| m.mode() & 0o7777);
        args.insert("mode", mode_text(bits).into());
    }
    let data = fs::read(&src).or_fail(&src)?;
    write_content(ctx, &args, &data, &src, "copy", false)
}

/// ansible.builtin.template, from the point the text is rendered: the controller rendered it
/// and embedded the result as `src`; newline_sequence is applied here, as in Python.
pub fn template(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, TEMPLATE_ARGS, "template")?;
    let src = arg(args, "src");
    if src.is_none() || arg(args, "dest").is_none() {
        return fail("src and dest are required");
    }
    let newline = match args.get("newline_sequence") {
        None => "\n".to_string(),
        Some(v) => match py_str(v).as_str() {
            "\\n" | "\n" => "\n".to_string(),
            "\\r" | "\r" => "\r".to_string(),
            "\\r\\n" | "\r\n" => "\r\n".to_string(),
            _ => return fail("newline_sequence needs to be one of: \\n, \\r or \\r\\n"),
        },
    };
    let defaults: [(&str, Value); 8] = [
        ("trim_blocks", Value::Bool(true)),
        ("lstrip_blocks", Value::Bool(false)),
        ("block_start_string", "{%".into()),
        ("block_end_string", "%}".into()),
        ("variable_start_string", "{{".into()),
        ("variable_end_string", "}}".into()),
        ("comment_start_string", "{#".into()),
        ("comment_end_string", "#}".into()),
    ];
    for (option, default) in defaults.iter() {
        if let Some(value) = args.get(option) {
            if !py_eq(value, default) {
                return fail(format!(
                    "{}={} is not supported by rustle-deploy's template module yet; templates use Jinja2's default syntax with trim_blocks on and lstrip_blocks off",
                    option,
                    py_repr(value)
                ));
            }
        }
    }
    let encoding = arg(args, "output_encoding").map(py_str).unwrap_or_default();
    if !encoding.is_empty() && !matches!(encoding.to_lowercase().replace('_', "-").as_str(), "utf-8" | "utf8" | "u8" | "utf") {
        return fail(format!("output_encoding={} is not supported by the native runner (only utf-8)", encoding));
    }
    let (rendered, label) = embedded(ctx, src.unwrap_or(&Value::Null))?;
    let data = if newline == "\n" { rendered } else { replace_newlines(&rendered, newline.as_bytes()) };
    let mut args = args.clone();
    if let Some(dest) = arg(&args, "dest").map(py_str) {
        args.insert("dest", crate::paths::expand_user_home(&dest).into());
    }
    write_content(ctx, &args, &data, &label, "template", true)
}

/// `text.replace("\r\n", "\n").replace("\n", newline)` on bytes.
fn replace_newlines(data: &[u8], newline: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' || (data[i] == b'\r' && data.get(i + 1) == Some(&b'\n')) {
            out.extend_from_slice(newline);
            i += if data[i] == b'\r' { 2 } else { 1 };
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Python `==` between JSON values (bools compare as 0/1 with numbers).
fn py_eq(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(x) => Some(*x as i64 as f64),
        Value::Int(x) => Some(*x as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn is_text(data: &[u8]) -> bool {
    !data[..data.len().min(8192)].contains(&0)
}

/// The shared tail of copy and template (`files._write_content`).
fn write_content(ctx: &mut Ctx, args: &Map, data: &[u8], label: &str, module: &str, show_diff: bool) -> ModuleResult {
    let dest = match args.get("dest") {
        Some(v) if !v.is_null() && !py_str(v).is_empty() => expand(v),
        _ => return fail("missing required arguments: dest"),
    };
    let force = arg_bool(args, "force", true)?;
    let backup = arg_bool(args, "backup", false)?;
    let follow = arg_bool(args, "follow", false)?;
    let attrs = Attrs::from_args(args);
    let checksum_src = sha1_hex(data);
    if ctx.check {
        if let Some(early) = check_mode_preview(ctx, &dest, data, &checksum_src, label, force, follow, show_diff)? {
            return Ok(early);
        }
    }
    if let Some(expected) = arg(args, "checksum") {
        if py_truthy(expected) && expected.as_str() != Some(checksum_src.as_str()) {
            return fail_with(
                "Copied file does not match the expected checksum. Transfer failed.",
                vec![("checksum", checksum_src.clone().into()), ("expected_checksum", expected.clone())],
            );
        }
    }
    let has_content = module == "copy" && arg(args, "content").is_some();
    let mut dest = dest;
    let mut changed = false;
    if dest.ends_with('/') {
        if has_content {
            return fail("can not use content with a dir as dest");
        }
        dest = join(&dest, basename(label));
        let dir = dirname(&dest);
        if !exists(&dir) {
            if ctx.check {
                return Ok(map(vec![("msg", format!("dest directory {} would be created", dir).into()), ("changed", true.into()), ("src", label.into())]));
            }
            let dir_attrs = Attrs { mode: arg(args, "directory_mode"), ..attrs };
            changed = makedirs(ctx.check, &dir, dir_attrs, None)?;
        }
    }
    if isdir(&dest) {
        if has_content {
            return fail("can not use content with a dir as dest");
        }
        dest = join(&dest, basename(label));
    }
    let mut before: Option<Vec<u8>> = None;
    if lexists(&dest) {
        if islink(&dest) && follow {
            dest = realpath(&dest);
        }
        if !force && exists(&dest) {
            // Ansible's copy/template action returns quietly here (no msg)
            return Ok(map(vec![("src", label.into()), ("dest", dest.into()), ("changed", false.into())]));
        }
        if can_access(&dest, R_OK) && isfile(&dest) {
            before = Some(fs::read(&dest).or_fail(&dest)?);
        }
    } else if !isdir(&dirname(&abspath(&dest))) {
        return fail(format!("Destination directory {} does not exist", dirname(&dest)));
    }
    let checksum_dest = before.as_deref().map(sha1_hex);
    let mut result = map(vec![
        ("dest", dest.clone().into()),
        ("src", label.into()),
        ("checksum", checksum_src.clone().into()),
        ("md5sum", md5_hex(data).into()),
        ("size", Value::Int(data.len() as i64)),
    ]);
    if Some(&checksum_src) != checksum_dest.as_ref() || islink(&dest) {
        changed = true;
        if ctx.diff && show_diff && is_text(data) && before.as_deref().map_or(true, is_text) {
            result.insert("diff", Value::List(vec![copy_diff(before.as_deref(), data, &dest, label)]));
        }
        if !ctx.check {
            let dir = dirname(&dest);
            if !can_access(if dir.is_empty() { "." } else { &dir }, W_OK) {
                return fail_with(format!("Destination {} not writable", dir), vec![("checksum", checksum_src.into())]);
            }
            if backup && exists(&dest) {
                result.insert("backup_file", backup_local(false, &dest)?.into());
            }
            if let Some(validate) = arg(args, "validate").filter(|v| py_truthy(v)) {
                validate_with_attrs(ctx, data, &dest, &py_str(validate), attrs.mode)?;
            }
            // a symlinked dest (follow=false) is replaced by the rename itself, atomically
            atomic_write(&dest, data, attrs.mode, None)?;
        }
    } else {
        // Ansible's copy action leaves an unchanged file to the file module: it says path
        result.insert("path", dest.clone().into());
    }
    if (ctx.check && !exists(&dest)) || apply_attributes(ctx.check, &dest, attrs, None, true)? {
        changed = true;
    }
    result.insert("changed", changed.into());
    if exists(&dest) {
        let mut info = path_info(&dest, true);
        info.remove("path");
        info.remove("size");
        for (k, v) in info.0 {
            result.insert(&k, v);
        }
    }
    Ok(result)
}

/// Ansible's copy action in check mode: a differing file is reported changed unexamined.
#[allow(clippy::too_many_arguments)]
fn check_mode_preview(ctx: &Ctx, dest: &str, data: &[u8], checksum_src: &str, label: &str, force: bool, follow: bool, show_diff: bool) -> R<Option<Map>> {
    let mut target = dest.to_string();
    if target.ends_with('/') || isdir(&target) {
        target = join(&target, basename(label));
    }
    if islink(&target) && follow {
        target = realpath(&target);
    }
    if lexists(&target) && !force {
        return Ok(None);
    }
    let before = if isfile(&target) && !islink(&target) {
        if checksum_file(&target, "sha1")? == checksum_src {
            return Ok(None);
        }
        Some(fs::read(&target).or_fail(&target)?)
    } else if isfile(&target) {
        // a symlink to a file: Ansible diffs against its target
        Some(fs::read(&target).or_fail(&target)?)
    } else {
        None
    };
    let mut result = map(vec![("changed", true.into()), ("dest", target.clone().into()), ("src", label.into()), ("checksum", checksum_src.into())]);
    if ctx.diff && show_diff && is_text(data) && before.as_deref().map_or(true, is_text) {
        result.insert("diff", Value::List(vec![copy_diff(before.as_deref(), data, &target, label)]));
    }
    Ok(Some(result))
}

/// `files._makedirs_with_mode`: create the missing components of `path` with the attributes.
fn makedirs(check: bool, path: &str, attrs: Attrs, mut diff: Option<&mut Map>) -> R<bool> {
    let mut missing = Vec::new();
    let mut cur = abspath(path);
    while !cur.is_empty() && !lexists(&cur) {
        missing.push(cur.clone());
        let parent = dirname(&cur);
        if parent == cur {
            break;
        }
        cur = parent;
    }
    let mut changed = false;
    for item in missing.iter().rev() {
        changed = true;
        if check {
            continue;
        }
        if let Err(e) = fs::create_dir(item) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return fail_with(format!("There was an issue creating {} as requested: {}", item, os_error_text(&e, item)), vec![("path", path.into())]);
            }
        }
        apply_attributes(check, item, attrs, diff.as_deref_mut(), true)?;
    }
    Ok(changed)
}

// --------------------------------------------------------------------------------------- file

const FILE_ARGS: &[&str] = &[
    "path", "dest", "name", "state", "src", "recurse", "force", "follow", "mode", "owner", "group", "access_time", "modification_time", "access_time_format",
    "modification_time_format", "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel", "_original_basename", "_diff_peek",
];

/// A requested access or modification time.
#[derive(Clone, Copy, PartialEq)]
enum Time {
    Keep,
    Now,
}

/// Everything the state handlers of `file` need.
struct FileTask<'a> {
    check: bool,
    src: Option<String>,
    attrs: Attrs<'a>,
    recurse: bool,
    force: bool,
    follow: bool,
    mtime: Time,
    atime: Time,
    warnings: Vec<String>,
}

fn prev_state(path: &str) -> &'static str {
    if !lexists(path) {
        "absent"
    } else if islink(path) {
        "link"
    } else if isdir(path) {
        "directory"
    } else if stat(path).map_or(false, |m| m.nlink() > 1) {
        "hard"
    } else {
        "file"
    }
}

fn timestamp(value: Option<String>, format_arg: Option<&Value>) -> R<Time> {
    match value.as_deref() {
        None | Some("preserve") => Ok(Time::Keep),
        Some("now") => Ok(Time::Now),
        Some(other) => {
            let fmt = format_arg.map(py_str).unwrap_or_else(|| "%Y%m%d%H%M.%S".to_string());
            fail(format!("Error while obtaining timestamp for time {} using format {}: explicit timestamps are not supported by the native runner (only 'now' and 'preserve')", other, fmt))
        }
    }
}

/// ansible.builtin.file: file, directory, link, hard, touch, absent.
pub fn file(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, FILE_ARGS, "file")?;
    let path = match pop_arg(args, &["path", "dest", "name"]) {
        Some(p) => expand(p),
        None => return fail("missing required arguments: path"),
    };
    // src is type=path, as Ansible's argument spec
    let src = arg(args, "src").map(expand);
    let recurse = arg_bool(args, "recurse", false)?;
    let given = arg(args, "state").map(py_str);
    if let Some(state) = &given {
        if !["file", "directory", "link", "hard", "touch", "absent"].contains(&state.as_str()) {
            return fail(format!("value of state must be one of: absent, directory, file, hard, link, touch, got: {}", state));
        }
    }
    // Ansible's additional_parameter_handling: an existing directory path names the file
    // inside it (except for link and absent), the state defaults to the current one
    let mut path = path;
    if given.as_deref() != Some("link") && given.as_deref() != Some("absent") && isdir(&path) {
        let basename = match arg(args, "_original_basename").filter(|v| py_truthy(v)) {
            Some(v) => Some(py_str(v)),
            None => src.as_deref().map(|s| basename(s).to_string()),
        };
        if let Some(base) = basename {
            path = join(&path, &base);
        }
    }
    let prev = prev_state(&path);
    let state = match given {
        Some(s) => s,
        None if prev != "absent" => prev.to_string(),
        None if recurse => "directory".to_string(),
        None => "file".to_string(),
    };
    if recurse && state != "directory" {
        return fail_with("recurse option requires state to be 'directory'", vec![("path", path.as_str().into())]);
    }
    if src.as_deref().map_or(false, |s| !s.is_empty()) && state != "link" && state != "hard" {
        return fail_with("src option requires state to be 'link' or 'hard'", vec![("path", path.as_str().into())]);
    }
    if ctx.check && state != "absent" {
        warn_unknown_owner(ctx, arg(args, "owner"), arg(args, "group"));
    }
    // touch sets both times to now unless told otherwise (`mtime_raw or "now"`)
    let touch = state == "touch";
    let time_arg = |name: &str| match arg(args, name) {
        Some(v) if py_truthy(v) || !touch => Some(py_str(v)),
        _ if touch => Some("now".to_string()),
        _ => None,
    };
    let mut task = FileTask {
        check: ctx.check,
        src,
        attrs: Attrs::from_args(args),
        recurse,
        force: arg_bool(args, "force", false)?,
        follow: arg_bool(args, "follow", true)?,
        mtime: timestamp(time_arg("modification_time"), arg(args, "modification_time_format"))?,
        atime: timestamp(time_arg("access_time"), arg(args, "access_time_format"))?,
        warnings: Vec::new(),
    };
    let outcome = match state.as_str() {
        "file" => ensure_file(&mut task, &path, prev),
        "directory" => ensure_directory(&mut task, &path, prev),
        "link" => ensure_link(&mut task, &path, prev),
        "hard" => ensure_hard(&mut task, &path, prev),
        "touch" => ensure_touch(&mut task, &path, prev),
        _ => ensure_absent(&mut task, &path, prev),
    };
    ctx.warnings.append(&mut task.warnings);
    let mut result = outcome?;
    if !ctx.diff {
        result.remove("diff");
    }
    let target = ["path", "dest"].iter().filter_map(|k| result.get(k)).find(|v| py_truthy(v)).map(py_str).unwrap_or_else(|| path.clone());
    if state != "absent" && exists(&target) {
        // Ansible's add_path_info follows links: a dangling one gets none
        let mut info = path_info(&target, false);
        info.remove("path");
        for (k, v) in info.0 {
            result.insert(&k, v);
        }
    } else if state == "absent" {
        result.insert("state", "absent".into());
    }
    Ok(result)
}

fn initial_diff(path: &str, state: &str, prev: &str) -> Map {
    let side = || Value::Dict(map(vec![("path", path.into())]));
    let mut diff = map(vec![("before", side()), ("after", side())]);
    if prev != state {
        diff_set(Some(&mut diff), "state", prev.into(), state.into());
        if state == "absent" && prev == "directory" {
            let mut dirs = Vec::new();
            let mut files = Vec::new();
            walk(path, &mut |item, is_dir| if is_dir { dirs.push(Value::from(item)) } else { files.push(Value::from(item)) });
            let content = map(vec![("directories", Value::List(dirs)), ("files", Value::List(files))]);
            if let Some(Value::Dict(before)) = diff.get_mut("before") {
                before.insert("path_content", Value::Dict(content));
            }
        }
    }
    diff
}

/// `os.walk(top)` order (top-down, directories not followed through symlinks): calls `visit`
/// with each entry of a directory (subdirectories first, then files, in listing order), then
/// descends into the subdirectories.
fn walk(top: &str, visit: &mut dyn FnMut(&str, bool)) {
    let entries = match fs::read_dir(top) {
        Ok(e) => e,
        Err(_) => return,
    };
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let item = join(top, &entry.file_name().to_string_lossy());
        if isdir(&item) {
            dirs.push(item);
        } else {
            files.push(item);
        }
    }
    for d in dirs.iter() {
        visit(d, true);
    }
    for f in files.iter() {
        visit(f, false);
    }
    for d in dirs.iter().filter(|d| !islink(d)) {
        walk(d, visit);
    }
}

fn file_result(key: &str, path: &str, changed: bool, diff: Map) -> Map {
    map(vec![(key, path.into()), ("changed", changed.into()), ("diff", Value::Dict(diff))])
}

fn ensure_absent(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    let mut result = map(vec![("path", path.into()), ("changed", false.into())]);
    if prev == "absent" {
        return Ok(result);
    }
    result.insert("diff", Value::Dict(initial_diff(path, "absent", prev)));
    result.insert("changed", true.into());
    if !task.check {
        if prev == "directory" {
            if let Err(e) = fs::remove_dir_all(path) {
                return fail(format!("rmtree failed: {}", os_error_text(&e, path)));
            }
        } else if let Err(e) = fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                return fail_with("Unlinking failed.", vec![("path", path.into())]);
            }
        }
    }
    Ok(result)
}

fn ensure_file(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    let mut diff = initial_diff(path, "file", prev);
    let mut path = path.to_string();
    let mut prev = prev;
    if prev != "file" && prev != "hard" {
        if task.follow && prev == "link" {
            path = realpath(&path);
            prev = prev_state(&path);
        }
        if prev != "file" && prev != "hard" {
            return fail_with(format!("file ({}) is {}, cannot continue", path, prev), vec![("path", path.as_str().into()), ("state", prev.into())]);
        }
    }
    let mut changed = apply_attributes(task.check, &path, task.attrs, Some(&mut diff), true)?;
    changed |= update_times(task, &path, Some(&mut diff), true)?;
    Ok(file_result("path", &path, changed, diff))
}

fn ensure_directory(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    let mut path = path.to_string();
    let mut prev = prev;
    if task.follow && prev == "link" {
        path = realpath(&path);
        prev = prev_state(&path);
    }
    let mut diff = initial_diff(&path, "directory", prev);
    if prev == "absent" {
        if task.check {
            return Ok(file_result("path", &path, true, diff));
        }
        let mut changed = makedirs(task.check, &path, task.attrs, Some(&mut diff))?;
        update_times(task, &path, Some(&mut diff), true)?;
        if task.recurse {
            changed |= recurse(task, &path)?;
        }
        return Ok(file_result("path", &path, changed, diff));
    }
    if prev != "directory" {
        return fail_with(format!("{} already exists as a {}", path, prev), vec![("path", path.as_str().into())]);
    }
    let mut changed = apply_attributes(task.check, &path, task.attrs, Some(&mut diff), true)?;
    changed |= update_times(task, &path, Some(&mut diff), true)?;
    if task.recurse {
        changed |= recurse(task, &path)?;
    }
    Ok(file_result("path", &path, changed, diff))
}

fn recurse(task: &mut FileTask, path: &str) -> R<bool> {
    // Ansible's recursive_set_attributes: every entry below `path`, a symlink itself and, with
    // follow, its existing target (a directory target recursively)
    let mut items = Vec::new();
    walk(path, &mut |item, _| items.push(item.to_string()));
    let mut changed = false;
    for item in items {
        let link = islink(&item);
        changed |= apply_attributes(task.check, &item, task.attrs, None, !link)?;
        changed |= update_times(task, &item, None, !link)?;
        if task.follow && link {
            let target = join(&dirname(&item), &read_link(&item)?);
            if exists(&target) {
                if isdir(&target) {
                    changed |= recurse(task, &target)?;
                }
                changed |= apply_attributes(task.check, &target, task.attrs, None, true)?;
                changed |= update_times(task, &target, None, true)?;
            }
        }
    }
    Ok(changed)
}

/// `files._update_times`: set "now" times; true when they (would) change.
fn update_times(task: &FileTask, path: &str, diff: Option<&mut Map>, follow: bool) -> R<bool> {
    if task.mtime == Time::Keep && task.atime == Time::Keep {
        return Ok(false);
    }
    let st = if follow { fs::metadata(path) } else { fs::symlink_metadata(path) }.or_fail(path)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let (old_m, old_a) = (float_time(st.mtime(), st.mtime_nsec()), float_time(st.atime(), st.atime_nsec()));
    let new_m = if task.mtime == Time::Now { now } else { old_m };
    let new_a = if task.atime == Time::Now { now } else { old_a };
    if new_m == old_m && new_a == old_a {
        return Ok(false);
    }
    if let Some(diff) = diff {
        if new_m != old_m {
            diff_set(Some(diff), "mtime", Value::Float(old_m), Value::Float(new_m));
        }
        if new_a != old_a {
            diff_set(Some(diff), "atime", Value::Float(old_a), Value::Float(new_a));
        }
    }
    if !task.check {
        if let Err(e) = set_times(path, new_a, new_m, follow) {
            return fail_with(format!("Error while updating modification or access time: {}", os_error_text(&e, path)), vec![("path", path.into())]);
        }
    }
    Ok(true)
}

/// `files._place_link`: create `path` as a link to `src`; an existing path is replaced
/// through a temporary link and a rename, so it is never missing.
fn place_link(hard: bool, src: &str, path: &str, prev: &str) -> R<()> {
    let make = |target: &str| if hard { fs::hard_link(Path::new(src), Path::new(target)) } else { std::os::unix::fs::symlink(src, target) };
    if prev == "absent" {
        return make(path).or_else(|e| fail_with(format!("Error while linking: {}", link_error_text(&e, src, path)), vec![("path", path.into())]));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let tmp = join(&dirname(path), &format!(".{}.{}.tmp", crate::sys::getpid(), crate::json::float_repr(now)));
    let outcome = (|| {
        if prev == "directory" && exists(path) {
            fs::remove_dir(path).map_err(|e| os_error_text(&e, path))?;
        }
        make(&tmp).map_err(|e| link_error_text(&e, src, &tmp))?;
        fs::rename(&tmp, path).map_err(|e| link_error_text(&e, &tmp, path))
    })();
    outcome.or_else(|text| {
        if lexists(&tmp) {
            let _ = fs::remove_file(&tmp);
        }
        fail_with(format!("Error while replacing: {}", text), vec![("path", path.into())])
    })
}

/// `str(OSError)` for a two-path call: `[Errno 17] File exists: 'a' -> 'b'`.
fn link_error_text(err: &io::Error, a: &str, b: &str) -> String {
    format!("[Errno {}] {}: {} -> {}", err.raw_os_error().unwrap_or(0), crate::sys::strerror(err), py_repr_str(a), py_repr_str(b))
}

fn set_diff_src(diff: &mut Map, old: &str, new: &str) {
    diff_set(Some(diff), "src", old.into(), new.into());
}

/// Ansible's check-mode warnings for an owner or group that does not exist (yet).
fn warn_unknown_owner(ctx: &mut Ctx, owner: Option<&Value>, group: Option<&Value>) {
    let checks: [(Option<&Value>, &str, &str); 2] = [(owner, "user", "uid"), (group, "group", "gid")];
    for (value, what, id_word) in checks {
        let name = match value.filter(|v| py_truthy(v)) {
            Some(v) => py_str(v),
            None => continue,
        };
        let known = match name.trim().parse::<u32>() {
            Ok(number) => {
                let found = if what == "user" { crate::sys::user_name(number) } else { crate::sys::group_name(number) };
                if found.is_none() {
                    ctx.warnings.push(format!("failed to look up {} with {} {}. Create {} up to this point in real play", what, id_word, number, what));
                }
                continue;
            }
            Err(_) => if what == "user" { crate::sys::user_id(&name).is_some() } else { crate::sys::group_id(&name).is_some() },
        };
        if !known {
            ctx.warnings.push(format!("failed to look up {} {}. Create {} up to this point in real play", what, name, what));
        }
    }
}

fn link_result(path: &str, src: &Option<String>, changed: bool, diff: Map) -> Map {
    map(vec![
        ("dest", path.into()),
        ("src", src.clone().map_or(Value::Null, Value::from)),
        ("changed", changed.into()),
        ("diff", Value::Dict(diff)),
    ])
}

fn read_link(path: &str) -> R<String> {
    fs::read_link(path).map(|t| t.to_string_lossy().into_owned()).or_fail(path)
}

fn ensure_link(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    let mut src = task.src.clone();
    if src.is_none() && task.follow && islink(path) {
        src = Some(read_link(path)?);
    }
    let relpath = if !islink(path) && isdir(path) { path.to_string() } else { dirname(path) };
    let absrc = src.as_ref().map(|s| join(&relpath, s));
    if let (false, Some(s), Some(a)) = (task.force, &src, &absrc) {
        if !exists(a) {
            return fail_with(
                format!("src file does not exist, use 'force=yes' if you really want to create the link: {}", a),
                vec![("path", path.into()), ("src", s.as_str().into())],
            );
        }
    }
    if prev == "directory" {
        if !task.force {
            return fail_with(format!("refusing to convert from {} to symlink for {}", prev, path), vec![("path", path.into())]);
        }
        if fs::read_dir(path).or_fail(path)?.next().is_some() {
            return fail_with(format!("the directory {} is not empty, refusing to convert it", path), vec![("path", path.into())]);
        }
    } else if (prev == "file" || prev == "hard") && !task.force {
        return fail_with(format!("refusing to convert from {} to symlink for {}", prev, path), vec![("path", path.into())]);
    }
    let mut diff = initial_diff(path, "link", prev);
    let mut changed = false;
    if ["hard", "file", "directory", "absent"].contains(&prev) {
        if src.is_none() {
            return fail("src is required for creating new symlinks");
        }
        changed = true;
    } else if let (true, Some(s)) = (prev == "link", &src) {
        let old = read_link(path)?;
        if &old != s {
            set_diff_src(&mut diff, &old, s);
            changed = true;
        }
    }
    if changed && !task.check {
        place_link(false, src.as_deref().unwrap_or(""), path, prev)?;
    }
    if task.check && !lexists(path) {
        return Ok(link_result(path, &src, changed, diff));
    }
    if task.follow && islink(path) && !exists(path) {
        // Ansible warns whether or not attributes were asked for
        task.warnings.push("Cannot set fs attributes on a non-existent symlink target. follow should be set to False to avoid this.".to_string());
    } else if lexists(path) {
        changed |= apply_attributes(task.check, path, task.attrs, Some(&mut diff), task.follow)?;
        changed |= update_times(task, path, Some(&mut diff), task.follow)?;
    }
    Ok(link_result(path, &src, changed, diff))
}

fn same_file(a: &str, b: &str) -> R<bool> {
    let (x, y) = (fs::metadata(a).or_fail(a)?, fs::metadata(b).or_fail(b)?);
    Ok(x.dev() == y.dev() && x.ino() == y.ino())
}

fn ensure_hard(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    // as Ansible's ensure_hardlink: a relative src names a path from the working directory
    let src = match &task.src {
        Some(s) => s.clone(),
        None if prev == "hard" => String::new(),
        None => return fail("src is required for creating new hardlinks"),
    };
    if task.src.is_some() && !exists(&src) {
        return fail_with("src does not exist", vec![("dest", path.into()), ("src", src.as_str().into())]);
    }
    let mut diff = initial_diff(path, "hard", prev);
    let different = || fail_with("Cannot link, different hard link exists at destination", vec![("dest", path.into()), ("src", src.as_str().into())]);
    let mut changed = false;
    match prev {
        "absent" => changed = true,
        "link" => {
            let old = read_link(path)?;
            if old != src {
                set_diff_src(&mut diff, &old, &src);
                changed = true;
            }
        }
        "hard" => {
            if task.src.is_some() && !same_file(&src, path)? {
                changed = true;
                if !task.force {
                    return different();
                }
            }
        }
        "file" => {
            changed = true;
            if !task.force {
                return fail_with(format!("Cannot link, {} exists at destination", prev), vec![("dest", path.into()), ("src", src.as_str().into())]);
            }
        }
        _ => {
            changed = true;
            if exists(path) {
                if fs::metadata(path).or_fail(path)?.ino() == fs::metadata(&src).or_fail(&src)?.ino() {
                    return Ok(map(vec![("path", path.into()), ("changed", false.into())]));
                }
                if !task.force {
                    return fail_with("Cannot link: different hard link exists at destination", vec![("dest", path.into()), ("src", src.as_str().into())]);
                }
            }
        }
    }
    let src_value = task.src.clone();
    if changed && !task.check {
        if prev == "absent" && task.follow && islink(&src) {
            place_link(true, &read_link(&src)?, path, prev)?;
        } else {
            place_link(true, &src, path, prev)?;
        }
    }
    if task.check && !exists(path) {
        return Ok(link_result(path, &src_value, changed, diff));
    }
    changed |= apply_attributes(task.check, path, task.attrs, Some(&mut diff), true)?;
    changed |= update_times(task, path, Some(&mut diff), true)?;
    Ok(link_result(path, &src_value, changed, diff))
}

fn ensure_touch(task: &mut FileTask, path: &str, prev: &str) -> R<Map> {
    let mut diff = initial_diff(path, "touch", prev);
    let mut changed = false;
    if prev == "absent" {
        changed = true;
        if !task.check {
            if let Err(e) = fs::OpenOptions::new().write(true).create(true).truncate(true).open(path) {
                return fail_with(format!("Error, could not touch target: {}", os_error_text(&e, path)), vec![("path", path.into())]);
            }
        }
    }
    if task.check && !lexists(path) {
        return Ok(map(vec![("dest", path.into()), ("changed", true.into()), ("diff", Value::Dict(diff))]));
    }
    changed |= apply_attributes(task.check, path, task.attrs, Some(&mut diff), task.follow)?;
    changed |= update_times(task, path, Some(&mut diff), task.follow)?;
    Ok(map(vec![("dest", path.into()), ("changed", changed.into()), ("diff", Value::Dict(diff))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> String {
        crate::test_dir("files", name).to_string_lossy().into_owned()
    }

    #[test]
    fn a_rewrite_keeps_the_files_extended_attributes() {
        let dir = temp_dir("xattrs");
        let path = format!("{}/f", dir);
        fs::write(&path, "TEST").unwrap();
        let (c_path, name) = (std::ffi::CString::new(path.as_str()).unwrap(), std::ffi::CString::new("user.rustle").unwrap());
        let set = unsafe { setxattr(c_path.as_ptr(), name.as_ptr(), b"kept".as_ptr() as *const _, 4, 0) };
        if set != 0 {
            return; // a file system without user attributes: nothing to keep
        }
        atomic_write(&path, b"UPDATE", None, None).unwrap();
        let mut value = vec![0u8; 16];
        let len = unsafe { getxattr(c_path.as_ptr(), name.as_ptr(), value.as_mut_ptr() as *mut _, value.len()) };
        assert_eq!(len, 4);
        assert_eq!(&value[..4], b"kept");
        assert_eq!(fs::read(&path).unwrap(), b"UPDATE");
    }

    /// Run `module` with JSON `args`; the embedded files map holds "key=1\n" under its sha256.
    fn run(module: fn(&mut Ctx, &Map) -> ModuleResult, check: bool, diff: bool, args: &str) -> (ModuleResult, Vec<String>) {
        let args = crate::json::parse(args).unwrap();
        let env = Map::new();
        let embedded = map(vec![(crate::sha::sha256_hex(b"key=1\n").as_str(), "a2V5PTEK".into())]);
        let mut ctx = Ctx { module: "copy", check, diff, environment: &env, files: &embedded, warnings: Vec::new() };
        let res = module(&mut ctx, args.as_dict().unwrap());
        (res, ctx.warnings)
    }

    fn without_owner(mut res: Map) -> String {
        for k in ["owner", "group", "uid", "gid"] {
            res.remove(k);
        }
        crate::json::to_string(&Value::Dict(res))
    }

    fn src_arg() -> String {
        format!(r#"{{"sha256": "{}", "path": "conf/app.conf"}}"#, crate::sha::sha256_hex(b"key=1\n"))
    }

    #[test]
    fn copy_content_new_file_matches_python() {
        crate::sys::umask(0o022);
        let d = temp_dir("content");
        let (res, _) = run(copy, false, true, &format!(r#"{{"content": "hello\n", "dest": "{}/a.txt", "mode": "0640"}}"#, d));
        let want = format!(
            r#"{{"dest": "{d}/a.txt", "src": "content", "checksum": "f572d396fae9206628714fb2ce00f72e94f2258f", "md5sum": "b1946ac92492d2347c6235b4d2611184", "size": 6, "diff": [{{"before": "", "after": "hello\n", "after_header": "{d}/a.txt"}}], "changed": true, "mode": "0640", "state": "file"}}"#,
            d = d
        );
        assert_eq!(without_owner(res.ok().unwrap()), want);
        let (again, _) = run(copy, false, false, &format!(r#"{{"content": "hello\n", "dest": "{}/a.txt", "mode": "0640"}}"#, d));
        let again = again.ok().unwrap();
        assert_eq!(again.get("changed"), Some(&Value::Bool(false)));
        // unchanged: Ansible's copy action hands the file to the file module, which says path
        assert_eq!(again.get("path"), Some(&Value::from(format!("{}/a.txt", d))));
    }

    #[test]
    fn copy_embedded_src_into_new_directory() {
        let d = temp_dir("srcdir");
        let (res, _) = run(copy, false, false, &format!(r#"{{"src": {}, "dest": "{}/etc/app/", "directory_mode": "0750"}}"#, src_arg(), d));
        let res = res.ok().unwrap();
        assert_eq!(res.get("dest"), Some(&Value::from(format!("{}/etc/app/app.conf", d))));
        assert_eq!(res.get("src"), Some(&Value::from("conf/app.conf")));
        assert_eq!(res.get("md5sum"), Some(&Value::from("f3ea7c1edaeadb419b37f991d051ffb0")));
        assert_eq!(fs::metadata(format!("{}/etc/app", d)).unwrap().mode() & 0o7777, 0o750);
        assert_eq!(fs::read(format!("{}/etc/app/app.conf", d)).unwrap(), b"key=1\n");
    }

    #[test]
    fn copy_backup_check_mode_force_and_refusals() {
        let d = temp_dir("backup");
        let dest = format!("{}/a.txt", d);
        fs::write(&dest, "old\n").unwrap();
        let (res, _) = run(copy, true, true, &format!(r#"{{"content": "new\n", "dest": "{}"}}"#, dest));
        let res = res.ok().unwrap();
        assert_eq!(res.get("changed"), Some(&Value::Bool(true)));
        assert_eq!(res.get("diff").unwrap().as_list().unwrap()[0].get("before"), Some(&Value::from("old\n")));
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "new\n", "dest": "{}", "force": false}}"#, dest));
        assert_eq!(crate::json::to_string(&Value::Dict(res.ok().unwrap())), format!(r#"{{"src": "content", "dest": "{}", "changed": false}}"#, dest));
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "new\n", "dest": "{}", "backup": true}}"#, dest));
        let backup = res.ok().unwrap().get("backup_file").and_then(Value::as_str).unwrap().to_string();
        assert_eq!(fs::read_to_string(backup).unwrap(), "old\n");
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new\n");
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "x", "dest": "{}", "validate": "test -s %s && exit 5"}}"#, dest));
        let failure = res.err().unwrap();
        assert_eq!((failure.msg.as_str(), failure.result.get("exit_status")), ("failed to validate", Some(&Value::Int(5))));
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new\n");
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "x", "dest": "{}", "validate": "grep -qx x %s"}}"#, dest));
        assert_eq!(res.ok().unwrap().get("changed"), Some(&Value::Bool(true)));
        assert_eq!(fs::read_to_string(&dest).unwrap(), "x");
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "x", "dest": "{}/nope/v.txt"}}"#, d));
        assert_eq!(res.err().unwrap().msg, format!("Destination directory {}/nope does not exist", d));
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "x", "dest": "{}", "bogus": 1}}"#, dest));
        assert!(res.err().unwrap().msg.starts_with("Unsupported parameters for (copy) module: bogus."));
    }

    #[test]
    fn copy_replaces_a_symlink_atomically() {
        let d = temp_dir("symlink");
        fs::write(format!("{}/target", d), "t\n").unwrap();
        std::os::unix::fs::symlink("target", format!("{}/ln", d)).unwrap();
        let (res, _) = run(copy, false, false, &format!(r#"{{"content": "real\n", "dest": "{}/ln"}}"#, d));
        assert_eq!(res.ok().unwrap().get("changed"), Some(&Value::Bool(true)));
        assert!(!islink(&format!("{}/ln", d)));
        assert_eq!(fs::read_to_string(format!("{}/target", d)).unwrap(), "t\n");
    }

    #[test]
    fn template_applies_newline_sequence_and_refuses_syntax_options() {
        let d = temp_dir("template");
        let (res, _) = run(template, false, false, &format!(r#"{{"src": {}, "dest": "{}/app.conf", "newline_sequence": "\r\n"}}"#, src_arg(), d));
        assert_eq!(res.ok().unwrap().get("src"), Some(&Value::from("conf/app.conf")));
        assert_eq!(fs::read(format!("{}/app.conf", d)).unwrap(), b"key=1\r\n");
        let (res, _) = run(template, false, false, &format!(r#"{{"src": {}, "dest": "{}/x", "trim_blocks": false}}"#, src_arg(), d));
        assert!(res.err().unwrap().msg.starts_with("trim_blocks=False is not supported"));
    }

    #[test]
    fn modes_parse_like_python() {
        let d = temp_dir("modes");
        let f = format!("{}/a", d);
        fs::write(&f, "").unwrap();
        chmod(&f, 0o640).unwrap();
        crate::sys::umask(0o022);
        let st = fs::metadata(&f).unwrap();
        let cases = [("u=rw,g=r,o=", 0o640), ("g+w,o-r", 0o660), ("u=rwX,g=rX,o=", 0o640), ("a+x", 0o751), ("+w", 0o640), ("0o644", 0o644), ("644", 0o644), ("u+s,o+t", 0o5640)];
        for (text, want) in cases {
            assert_eq!(parse_mode(&Value::from(text), Some(&st)).ok(), Some(want), "{}", text);
        }
        assert_eq!(parse_mode(&Value::Int(420), None).ok(), Some(0o644));
        let err = parse_mode(&Value::from("bad"), Some(&st)).err().unwrap();
        assert_eq!(err.msg, "mode must be in octal or symbolic form");
        assert_eq!(err.result.get("details"), Some(&Value::from("bad symbolic permission for mode: bad")));
    }

    #[test]
    fn paths_behave_like_os_path() {
        assert_eq!(normpath("//a//b/../c/."), "//a/c");
        assert_eq!(realpath("/tmp/../tmp/./x/../y"), "/tmp/y");
        std::env::set_var("RR_FILES_TEST", "v");
        assert_eq!(expandvars("$RR_FILES_TEST/${RR_FILES_TEST}x/$RR_NOPE_X/${}/$"), "v/vx/$RR_NOPE_X/${}/$");
        assert_eq!(dirname("/a/b/"), "/a/b");
        assert_eq!(dirname("//x"), "//");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn file_states() {
        let d = temp_dir("file");
        let (res, _) = run(file, false, true, &format!(r#"{{"path": "{}/a/b/c", "state": "directory", "mode": "0750"}}"#, d));
        let res = res.ok().unwrap();
        assert_eq!(res.get("changed"), Some(&Value::Bool(true)));
        assert_eq!(res.get("mode"), Some(&Value::from("0750")));
        assert_eq!(fs::metadata(format!("{}/a", d)).unwrap().mode() & 0o7777, 0o750);
        fs::write(format!("{}/target", d), "t").unwrap();
        let (res, _) = run(file, false, false, &format!(r#"{{"path": "{}/ln", "src": "target", "state": "link"}}"#, d));
        let res = res.ok().unwrap();
        assert_eq!(res.get("state"), Some(&Value::from("link")));
        assert_eq!(fs::read_link(format!("{}/ln", d)).unwrap().to_string_lossy(), "target");
        let (res, _) = run(file, false, false, &format!(r#"{{"path": "{}/target", "src": "g", "state": "link"}}"#, d));
        assert_eq!(res.err().unwrap().msg, format!("src file does not exist, use 'force=yes' if you really want to create the link: {}/g", d));
        let (res, _) = run(file, false, false, &format!(r#"{{"path": "{}/t", "state": "touch"}}"#, d));
        assert_eq!(res.ok().unwrap().get("changed"), Some(&Value::Bool(true)));
        let (res, _) = run(file, false, true, &format!(r#"{{"path": "{}/a", "state": "absent"}}"#, d));
        let res = res.ok().unwrap();
        let before = res.get("diff").unwrap().get("before").unwrap();
        assert_eq!(before.get("path_content").unwrap().get("directories"), Some(&Value::List(vec![format!("{}/a/b", d).into(), format!("{}/a/b/c", d).into()])));
        assert!(!lexists(&format!("{}/a", d)));
        let (res, _) = run(file, false, false, &format!(r#"{{"path": "{}/none", "state": "file"}}"#, d));
        assert_eq!(res.err().unwrap().msg, format!("file ({}/none) is absent, cannot continue", d));
    }
}
