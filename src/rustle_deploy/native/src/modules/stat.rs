//! `stat`: Ansible's `{"changed": false, "stat": {...}}`, a port of the Python runtime's
//! `files.stat` (same keys and values; checksums sha1 and sha256; the mime type from
//! `file -i`, as the Python runtime asks it).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::{Command, Stdio};

use super::files::{self, arg_bool, boolean, can_access, check_unknown, fail, float_time, map, pop_arg, py_str, R, R_OK, W_OK, X_OK};
use super::{Ctx, ModuleFailure, ModuleResult};
use crate::json::{Map, Value};

const STAT_ARGS: &[&str] = &[
    "path", "dest", "name", "follow", "get_checksum", "checksum_algorithm", "checksum", "checksum_algo", "get_mime", "mime", "mime_type", "mime-type",
    "get_attributes", "attr", "attributes",
];

/// ansible.builtin.stat.
pub fn stat(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, STAT_ARGS, "stat")?;
    let path = match pop_arg(args, &["path", "dest", "name"]) {
        Some(p) => files::expand(p),
        None => return fail("missing required arguments: path"),
    };
    let follow = arg_bool(args, "follow", false)?;
    let get_checksum = arg_bool(args, "get_checksum", true)?;
    let algorithm = pop_arg(args, &["checksum_algorithm", "checksum", "checksum_algo"]).map_or_else(|| "sha1".to_string(), py_str);
    if !["md5", "sha1", "sha224", "sha256", "sha384", "sha512"].contains(&algorithm.as_str()) {
        return fail(format!("value of checksum_algorithm must be one of: md5, sha1, sha224, sha256, sha384, sha512, got: {}", algorithm));
    }
    let get_mime = boolean(pop_arg(args, &["get_mime", "mime", "mime_type", "mime-type"]).unwrap_or(&Value::Bool(true)), "value")?;
    let st = match if follow { fs::metadata(&path) } else { fs::symlink_metadata(&path) } {
        Ok(st) => st,
        Err(e) if matches!(e.raw_os_error(), Some(2) | Some(20)) => {
            return Ok(map(vec![("changed", false.into()), ("stat", Value::Dict(map(vec![("exists", false.into())])))]));
        }
        Err(e) => return fail(files::os_error_text(&e, &path)),
    };
    let mut out = describe(&path, &st);
    let kind = st.file_type();
    if kind.is_symlink() {
        out.insert("lnk_source", files::realpath(&path).into());
        let target = fs::read_link(&path).map_err(|e| files::os_failure(e, &path))?;
        out.insert("lnk_target", target.to_string_lossy().into_owned().into());
    }
    if kind.is_file() && get_checksum && can_access(&path, R_OK) {
        out.insert("checksum", checksum(&path, &algorithm)?.into());
    }
    if get_mime {
        let (mimetype, charset) = mime(ctx, &path)?;
        out.insert("mimetype", mimetype.into());
        out.insert("charset", charset.into());
    }
    let get_attr = boolean(pop_arg(args, &["get_attributes", "attr", "attributes"]).unwrap_or(&Value::Bool(true)), "value")?;
    if get_attr {
        out.insert("version", Value::Null);
        out.insert("attributes", Value::List(Vec::new()));
        out.insert("attr_flags", "".into());
        for (key, value) in file_attributes(ctx, &path).iter() {
            out.insert(key, value.clone());
        }
    }
    Ok(map(vec![("changed", false.into()), ("stat", Value::Dict(out))]))
}

fn checksum(path: &str, algorithm: &str) -> R<String> {
    if algorithm != "sha1" && algorithm != "sha256" {
        return fail(format!("checksum_algorithm {} is not supported by the native runner (sha1 and sha256 are)", algorithm));
    }
    files::checksum_file(path, algorithm)
}

/// The keys every existing path gets, in the Python runtime's order.
fn describe(path: &str, st: &fs::Metadata) -> Map {
    let mode = st.mode();
    let kind = st.file_type();
    let bit = |mask: u32| Value::Bool(mode & mask != 0);
    map(vec![
        ("exists", true.into()),
        ("path", path.into()),
        ("mode", format!("{:04o}", mode & 0o7777).into()),
        ("isdir", kind.is_dir().into()),
        ("ischr", kind.is_char_device().into()),
        ("isblk", kind.is_block_device().into()),
        ("isreg", kind.is_file().into()),
        ("isfifo", kind.is_fifo().into()),
        ("islnk", kind.is_symlink().into()),
        ("issock", kind.is_socket().into()),
        ("uid", Value::Int(st.uid() as i64)),
        ("gid", Value::Int(st.gid() as i64)),
        ("size", Value::Int(st.size() as i64)),
        ("inode", Value::Int(st.ino() as i64)),
        ("dev", Value::Int(st.dev() as i64)),
        ("nlink", Value::Int(st.nlink() as i64)),
        ("atime", Value::Float(float_time(st.atime(), st.atime_nsec()))),
        ("mtime", Value::Float(float_time(st.mtime(), st.mtime_nsec()))),
        ("ctime", Value::Float(float_time(st.ctime(), st.ctime_nsec()))),
        ("wusr", bit(0o200)),
        ("rusr", bit(0o400)),
        ("xusr", bit(0o100)),
        ("wgrp", bit(0o020)),
        ("rgrp", bit(0o040)),
        ("xgrp", bit(0o010)),
        ("woth", bit(0o002)),
        ("roth", bit(0o004)),
        ("xoth", bit(0o001)),
        ("isuid", bit(0o4000)),
        ("isgid", bit(0o2000)),
        ("pw_name", files::user_name(st.uid()).into()),
        ("gr_name", files::group_name(st.gid()).into()),
        ("blocks", Value::Int(st.blocks() as i64)),
        ("block_size", Value::Int(st.blksize() as i64)),
        ("device_type", Value::Int(st.rdev() as i64)),
        ("readable", can_access(path, R_OK).into()),
        ("writeable", can_access(path, W_OK).into()),
        ("executable", can_access(path, X_OK).into()),
    ])
}

/// `which("file")` in the runner's PATH, as `lowlevel.which`.
fn which_file() -> Option<String> {
    which("file")
}

fn which(name: &str) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/bin:/usr/bin".to_string());
    path.split(':').map(|d| files::join(d, name)).find(|p| files::isfile(p) && can_access(p, X_OK))
}

/// Ansible's file attribute letters and names (`FILE_ATTRIBUTES`).
const FILE_ATTRIBUTES: [(char, &str); 20] = [
    ('A', "noatime"), ('a', "append"), ('c', "compressed"), ('C', "nocow"), ('d', "nodump"),
    ('D', "dirsync"), ('e', "extents"), ('E', "encrypted"), ('h', "blocksize"), ('i', "immutable"),
    ('I', "indexed"), ('j', "journalled"), ('N', "inline"), ('s', "zero"), ('S', "synchronous"),
    ('t', "notail"), ('T', "blockroot"), ('u', "undelete"), ('X', "compressedraw"), ('Z', "compresseddirty"),
];

/// `_common.file_attributes`: `version`, `attr_flags` and `attributes` from `lsattr -vd`
/// (nothing when lsattr is missing or cannot read the path).
fn file_attributes(ctx: &Ctx, path: &str) -> Map {
    let mut out = Map::new();
    let tool = match which("lsattr") {
        Some(t) => t,
        None => return out,
    };
    let mut cmd = Command::new(&tool);
    cmd.arg("-vd").arg(path).stdin(Stdio::null()).stderr(Stdio::null());
    for (k, v) in ctx.environment.iter() {
        cmd.env(k, py_str(v));
    }
    let output = match cmd.output() {
        Ok(o) if o.status.code() == Some(0) => o,
        _ => return out,
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 2 {
        return out;
    }
    let flags: String = fields[1].chars().filter(|c| *c != '-').collect();
    let names = flags
        .chars()
        .filter_map(|c| FILE_ATTRIBUTES.iter().find(|(l, _)| *l == c).map(|(_, n)| Value::from(*n)))
        .collect();
    out.insert("version", fields[0].into());
    out.insert("attr_flags", flags.into());
    out.insert("attributes", Value::List(names));
    out
}

/// Mime type and charset from `file --mime-type --mime-encoding PATH` ("unknown" when it fails or says something else).
fn mime(ctx: &Ctx, path: &str) -> R<(String, String)> {
    let unknown = || ("unknown".to_string(), "unknown".to_string());
    let tool = match which_file() {
        Some(t) => t,
        None => return Ok(unknown()),
    };
    let mut cmd = Command::new(&tool);
    cmd.args(["--mime-type", "--mime-encoding"]).arg(path).stdin(Stdio::null());
    for (k, v) in ctx.environment.iter() {
        cmd.env(k, py_str(v));
    }
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            let code = e.raw_os_error().unwrap_or(2);
            let argv = Value::List(vec![tool.as_str().into(), "--mime-type".into(), "--mime-encoding".into(), path.into()]);
            return Err(ModuleFailure::with(
                format!("[Errno {}] {}: {}", code, crate::sys::strerror(&e), files::py_repr(&Value::from(tool.as_str()))),
                map(vec![("rc", Value::Int(code as i64)), ("cmd", argv), ("stdout", "".into()), ("stderr", "".into())]),
            ));
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.code() != Some(0) || text.is_empty() {
        return Ok(unknown());
    }
    Ok(parse_mime(&text).unwrap_or_else(unknown))
}

/// `mout.rsplit(":", 1)[1].split(";")` into exactly two parts, then `charset.split("=")[1]`
/// (the last colon: a path may hold one).
fn parse_mime(text: &str) -> Option<(String, String)> {
    let (_, rest) = text.rsplit_once(':')?;
    let parts: Vec<&str> = rest.split(';').collect();
    if parts.len() != 2 {
        return None;
    }
    let charset = parts[1].split('=').nth(1)?;
    Some((parts[0].trim().to_string(), charset.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> String {
        crate::test_dir("stat", name).to_string_lossy().into_owned()
    }

    fn run(args: Map) -> ModuleResult {
        let (env, embedded) = (Map::new(), Map::new());
        let mut ctx = Ctx { module: "stat", check: false, diff: false, environment: &env, files: &embedded, warnings: Vec::new() };
        stat(&mut ctx, &args)
    }

    #[test]
    fn regular_file_keys_and_checksum() {
        let dir = temp_dir("reg");
        let f = format!("{}/f", dir);
        fs::write(&f, "content\n").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o4751)).unwrap();
        let res = run(map(vec![("path", f.as_str().into()), ("get_mime", false.into())])).ok().unwrap();
        let st = res.get("stat").unwrap();
        assert_eq!(st.get("mode"), Some(&Value::from("4751")));
        assert_eq!(st.get("isuid"), Some(&Value::Bool(true)));
        assert_eq!(st.get("checksum"), Some(&Value::from(crate::sha::sha1_hex(b"content\n"))));
        assert!(st.get("mimetype").is_none());
        let res = run(map(vec![("path", f.as_str().into()), ("checksum_algorithm", "sha256".into())])).ok().unwrap();
        assert_eq!(res.get("stat").unwrap().get("checksum"), Some(&Value::from(crate::sha::sha256_hex(b"content\n"))));
    }

    #[test]
    fn symlinks_missing_paths_and_unsupported_algorithms() {
        let dir = temp_dir("lnk");
        fs::write(format!("{}/f", dir), "x").unwrap();
        std::os::unix::fs::symlink("f", format!("{}/l", dir)).unwrap();
        let l = format!("{}/l", dir);
        let res = run(map(vec![("path", l.as_str().into()), ("get_mime", false.into())])).ok().unwrap();
        let st = res.get("stat").unwrap();
        assert_eq!(st.get("islnk"), Some(&Value::Bool(true)));
        assert_eq!(st.get("lnk_target"), Some(&Value::from("f")));
        assert!(st.get("checksum").is_none());
        let res = run(map(vec![("path", l.as_str().into()), ("follow", true.into()), ("get_mime", false.into())])).ok().unwrap();
        assert_eq!(res.get("stat").unwrap().get("isreg"), Some(&Value::Bool(true)));
        let res = run(map(vec![("path", format!("{}/nope", dir).into())])).ok().unwrap();
        assert_eq!(crate::json::to_string(&Value::Dict(res)), r#"{"changed": false, "stat": {"exists": false}}"#);
        let err = run(map(vec![("path", format!("{}/f", dir).into()), ("checksum_algorithm", "md5".into())])).err().unwrap();
        assert!(err.msg.contains("md5 is not supported"), "{}", err.msg);
        let err = run(map(vec![("path", l.as_str().into()), ("checksum_algorithm", "crc".into())])).err().unwrap();
        assert!(err.msg.starts_with("value of checksum_algorithm must be one of"));
    }

    #[test]
    fn mime_output_is_parsed_like_python() {
        assert_eq!(parse_mime("/x: text/plain; charset=us-ascii\n"), Some(("text/plain".to_string(), "us-ascii".to_string())));
        assert_eq!(parse_mime("/x: inode/directory"), None);
        assert_eq!(parse_mime("/a:b.txt: text/plain; charset=us-ascii"), Some(("text/plain".to_string(), "us-ascii".to_string())));
    }
}
