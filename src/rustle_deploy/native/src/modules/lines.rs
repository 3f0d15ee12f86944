//! `lineinfile`: a port of the Python runtime's `lines.lineinfile` (itself ansible-core's
//! algorithm): same matching, `changed`/`msg` strings and diffs; writes are atomic and follow
//! symlinks to the real file.
//!
//! Lines are bytes, as in Python. Regular expressions arrive pre-parsed from the controller
//! (`_regexp_ir`, `_insertafter_ir`, `_insertbefore_ir`) and are matched as Python matches its
//! `bytes` patterns (crate::regex, bytes mode). A pattern whose bytes form differs from its
//! `str` parse (non-ASCII characters, `\u`/`\U`/`\N` escapes) or that sets inline flags other
//! than `(?m)`, `(?s)` and `(?x)` (which the controller applied to the tree; blockinfile's
//! `_insert_multiline` says `(?m)` was set) is refused with a clear message.

use std::fs;

use super::files::{self, arg, arg_bool, check_unknown, exists, fail, fail_with, map, pop_arg, py_str, py_truthy, Attrs, R};
use super::{Ctx, ModuleResult};
use crate::json::{Map, Value};
use crate::regex::Regex;

const LINEINFILE_ARGS: &[&str] = &[
    "path", "dest", "destfile", "name", "state", "regexp", "regex", "search_string", "line", "value", "insertafter", "insertbefore", "backrefs", "create", "backup",
    "firstmatch", "validate", "mode", "owner", "group", "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel",
];

/// The parsed arguments of a lineinfile task.
struct Task<'a> {
    check: bool,
    diff: bool,
    dest: String,
    regexp: Option<(String, Regex)>,
    search_string: Option<String>,
    attrs: Attrs<'a>,
    backup: bool,
    /// `validate` (when truthy) and the task's environment it runs with (`lines._write`)
    validate: Option<String>,
    environment: &'a Map,
}

/// `validate` as `lines._write` passes it on: when truthy.
fn validate_arg(args: &Map) -> Option<String> {
    arg(args, "validate").filter(|v| py_truthy(v)).map(py_str)
}

impl Task<'_> {
    fn validation(&self) -> Option<(&Map, &str)> {
        self.validate.as_deref().map(|v| (self.environment, v))
    }
}

/// ansible.builtin.lineinfile.
pub fn lineinfile(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, LINEINFILE_ARGS, "lineinfile")?;
    let path = match pop_arg(args, &["path", "dest", "destfile", "name"]) {
        Some(p) => files::expand(p),
        None => return fail("missing required arguments: path"),
    };
    let state = arg(args, "state").map_or_else(|| "present".to_string(), py_str);
    let regexp_key = ["regexp", "regex"].iter().find(|k| arg(args, k).is_some());
    let regexp = regexp_key.map(|k| py_str(arg(args, k).unwrap_or(&Value::Null)));
    let search_string = arg(args, "search_string").map(py_str);
    let line = pop_arg(args, &["line", "value"]).map(py_str);
    let backrefs = arg_bool(args, "backrefs", false)?;
    let (ins_bef, ins_aft) = (arg(args, "insertbefore").map(py_str), arg(args, "insertafter").map(py_str));
    if ins_bef.is_some() && ins_aft.is_some() {
        return fail("parameters are mutually exclusive: insertbefore|insertafter");
    }
    if regexp.is_some() && search_string.is_some() {
        return fail("parameters are mutually exclusive: regexp|search_string");
    }
    if backrefs && search_string.is_some() {
        return fail("parameters are mutually exclusive: backrefs|search_string");
    }
    if state != "present" && state != "absent" {
        return fail(format!("value of state must be one of: absent, present, got: {}", state));
    }
    if regexp.as_deref() == Some("") || search_string.as_deref() == Some("") {
        let name = if regexp.as_deref() == Some("") { "regular expression" } else { "search string" };
        ctx.warnings.push(format!(
            "The {} is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending.",
            name
        ));
    }
    if files::isdir(&path) {
        return fail_with(format!("Path {} is a directory !", path), vec![("rc", Value::Int(256))]);
    }
    let regexp = match (regexp_key, regexp) {
        (Some(key), Some(text)) => Some((text.clone(), compile(args, &format!("_{}_ir", key), &text)?)),
        _ => None,
    };
    let task = Task { check: ctx.check, diff: ctx.diff, dest: path, regexp, search_string, attrs: Attrs::from_args(args), backup: arg_bool(args, "backup", false)?, validate: validate_arg(args), environment: ctx.environment };
    if state == "present" {
        if backrefs && task.regexp.is_none() {
            return fail("regexp is required with backrefs=true");
        }
        let line = match line {
            Some(l) => l,
            None => return fail("line is required with state=present"),
        };
        let ins_aft = if ins_bef.is_none() && ins_aft.is_none() { Some("EOF".to_string()) } else { ins_aft };
        let insert = match (&ins_aft, &ins_bef) {
            (Some(a), _) if a != "BOF" && a != "EOF" => Some(compile(args, "_insertafter_ir", a)?),
            (None, Some(b)) if b != "BOF" => Some(compile(args, "_insertbefore_ir", b)?),
            _ => None,
        };
        let create = arg_bool(args, "create", false)?;
        let firstmatch = arg_bool(args, "firstmatch", false)?;
        return present(&task, &line, Insert { after: ins_aft, before: ins_bef, regex: insert }, create, backrefs, firstmatch);
    }
    if task.regexp.is_none() && task.search_string.is_none() && line.is_none() {
        return fail("one of line, search_string, or regexp is required with state=absent");
    }
    absent(&task, line)
}

/// Where a new line goes: `insertafter`/`insertbefore` as given, and their regex if any.
struct Insert {
    after: Option<String>,
    before: Option<String>,
    regex: Option<Regex>,
}

/// The pre-parsed tree of a pattern, matched as Python's `bytes` pattern.
fn compile(args: &Map, key: &str, pattern: &str) -> R<Regex> {
    if !pattern.is_ascii() || has_escape(pattern, "uUN") {
        return fail(format!("regular expression {:?}: non-ASCII characters and \\u, \\U, \\N escapes are not supported by the native runner", pattern));
    }
    if has_inline_flags(pattern) {
        return fail(format!("regular expression {:?}: inline flags other than (?m), (?s) and (?x) are not supported by the native runner", pattern));
    }
    let tree = match args.get(key) {
        Some(t) => t,
        None => return fail(format!("regular expression {:?} arrived without its parse tree ({}); hint: recompile the artifact", pattern, key)),
    };
    Regex::from_bytes_tree(tree).or_else(|e| fail(format!("regular expression {:?}: {}", pattern, e)))
}

/// Whether `pattern` has a backslash escape with one of `letters` (`\\u` is not one).
fn has_escape(pattern: &str, letters: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                if letters.contains(next) {
                    return true;
                }
            }
        }
    }
    false
}

/// `(?` followed by inline flags other than global `m`, `s` and `x` (which the compiler
/// applied to the tree): `i`, `a`, `L`, `u`, or scoped flags.
fn has_inline_flags(pattern: &str) -> bool {
    let bytes = pattern.as_bytes();
    (0..bytes.len().saturating_sub(2)).any(|i| {
        if bytes[i] != b'(' || bytes[i + 1] != b'?' || (i > 0 && escaped(bytes, i)) {
            return false;
        }
        let run = bytes[i + 2..].iter().take_while(|b| b"aiLmsux-".contains(b)).count();
        run > 0 && (bytes[i + 2..i + 2 + run].iter().any(|b| !b"msx".contains(b)) || bytes.get(i + 2 + run) != Some(&b')'))
    })
}

/// `text.count("\n", 0, chars)` of `text = data.decode("utf-8", "surrogateescape")`: each
/// byte that is not UTF-8 is one character there.
fn newlines_in_first_chars(data: &[u8], chars: usize) -> usize {
    let (mut left, mut newlines, mut rest) = (chars, 0, data);
    while left > 0 && !rest.is_empty() {
        let (valid_len, bad) = match std::str::from_utf8(rest) {
            Ok(_) => (rest.len(), 0),
            Err(e) => (e.valid_up_to(), e.error_len().unwrap_or(rest.len() - e.valid_up_to())),
        };
        for c in std::str::from_utf8(&rest[..valid_len]).unwrap_or_default().chars() {
            if left == 0 {
                return newlines;
            }
            left -= 1;
            newlines += usize::from(c == '\n');
        }
        left = left.saturating_sub(bad); // each byte that is not UTF-8: a character, never a newline
        rest = &rest[valid_len + bad..];
    }
    newlines
}

fn escaped(bytes: &[u8], i: usize) -> bool {
    bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
}

fn search(re: &Regex, line: &[u8]) -> R<Option<crate::regex::Match>> {
    re.search_bytes(line).or_else(fail)
}

/// `readlines()` on bytes: lines keep their `\n`.
fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|b| *b == b'\n').map(|l| l.to_vec()).collect()
}

fn rstrip_newlines(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| *b != b'\r' && *b != b'\n').map_or(0, |i| i + 1);
    &line[..end]
}

fn with_newline(line: &[u8]) -> Vec<u8> {
    let mut l = line.to_vec();
    l.push(b'\n');
    l
}

fn content_diff(path: &str) -> Map {
    let header = format!("{} (content)", path);
    map(vec![("before", "".into()), ("after", "".into()), ("before_header", header.as_str().into()), ("after_header", header.as_str().into())])
}

fn present(task: &Task, line: &str, ins: Insert, create: bool, backrefs: bool, firstmatch: bool) -> ModuleResult {
    let dest = task.dest.as_str();
    let mut diff = content_diff(dest);
    let mut lines = if !exists(dest) {
        if !create {
            return fail_with(format!("Destination {} does not exist !", dest), vec![("rc", Value::Int(257))]);
        }
        let destpath = files::dirname(dest);
        if !destpath.is_empty() && !exists(&destpath) && !task.check {
            if let Err(e) = fs::create_dir_all(&destpath) {
                return fail(format!("Error creating {} ({})", destpath, files::os_error_text(&e, &destpath)));
            }
        }
        Vec::new()
    } else {
        split_lines(&fs::read(dest).map_err(|e| files::os_failure(e, dest))?)
    };
    if task.diff {
        diff.insert("before", files::to_text(&lines.concat()).into());
    }
    let b_line = line.as_bytes();
    let mut index: [i64; 2] = [-1, -1];
    let mut found: Option<(Vec<u8>, crate::regex::Match)> = None;
    let mut matched = false;
    let mut exact_line_match = false;
    if let Some((_, re)) = &task.regexp {
        for (lineno, cur) in lines.iter().enumerate() {
            if let Some(m) = search(re, cur)? {
                index[0] = lineno as i64;
                found = Some((cur.clone(), m));
                matched = true;
                if firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(needle) = &task.search_string {
        for (lineno, cur) in lines.iter().enumerate() {
            if contains(cur, needle.as_bytes()) {
                index[0] = lineno as i64;
                matched = true;
                if firstmatch {
                    break;
                }
            }
        }
    }
    if !matched {
        for (lineno, cur) in lines.iter().enumerate() {
            if b_line == rstrip_newlines(cur) {
                index[0] = lineno as i64;
                exact_line_match = true;
            } else if let Some(re) = &ins.regex {
                if search(re, cur)?.is_some() {
                    if ins.after.is_some() {
                        index[1] = lineno as i64 + 1;
                        if firstmatch {
                            break;
                        }
                    }
                    if ins.before.is_some() {
                        index[1] = lineno as i64;
                        if firstmatch {
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = exact_line_match; // the Python branch that reads it cannot be reached (see below)
    let mut msg = "";
    let mut changed = false;
    let after = ins.after.as_deref();
    let before = ins.before.as_deref();
    if index[0] != -1 {
        let mut new_line = match (&found, backrefs, &task.regexp) {
            (Some((text, m)), true, Some((_, re))) => re.expand_bytes(m, text, b_line).or_else(|e| fail(format!("Task failed: Module failed: {}", e.trim_start_matches("error: "))))?,
            _ => b_line.to_vec(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        // Python first tests "(regexp, search_string, match) == (None, None, None) and not
        // exact_line_match": index[0] is only set by a match or an exact line, so it never holds.
        let i = index[0] as usize;
        if lines[i] != new_line {
            lines[i] = new_line;
            msg = "line replaced";
            changed = true;
        }
    } else if backrefs {
        // a backrefs regexp that matches nothing leaves the file alone
    } else if before == Some("BOF") || after == Some("BOF") {
        lines.insert(0, with_newline(b_line));
        msg = "line added";
        changed = true;
    } else if after == Some("EOF") || index[1] == -1 {
        if lines.last().map_or(false, |l| !l.ends_with(b"\n") && !l.ends_with(b"\r")) {
            lines.push(b"\n".to_vec());
        }
        lines.push(with_newline(b_line));
        msg = "line added";
        changed = true;
    } else if after.map_or(false, |a| !a.is_empty()) && index[1] != -1 {
        let i = index[1] as usize;
        if lines.len() == i {
            if rstrip_newlines(&lines[i - 1]) != b_line {
                lines.push(with_newline(b_line));
                msg = "line added";
                changed = true;
            }
        } else if b_line != rstrip_newlines(&lines[i]) {
            lines.insert(i, with_newline(b_line));
            msg = "line added";
            changed = true;
        }
    } else {
        lines.insert(index[1] as usize, with_newline(b_line));
        msg = "line added";
        changed = true;
    }
    if task.diff {
        diff.insert("after", files::to_text(&lines.concat()).into());
    }
    let backupdest = write_if_changed(task, changed, &lines.concat(), true)?;
    let mut result = map(vec![("backup", backupdest.as_str().into())]);
    if !backupdest.is_empty() {
        result.insert("backup_file", backupdest.into());
    }
    if task.check && !exists(dest) {
        result.insert("changed", changed.into());
        result.insert("msg", msg.into());
        if task.diff {
            result.insert("diff", Value::Dict(diff));
        }
        return Ok(result);
    }
    conclude(task, changed, msg.to_string(), diff, result)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Back up (when asked and the file exists) and write atomically to the real path; the
/// backup's name, or "".
fn write_if_changed(task: &Task, changed: bool, data: &[u8], only_existing: bool) -> R<String> {
    if !changed || task.check {
        return Ok(String::new());
    }
    let mut backupdest = String::new();
    if task.backup && (!only_existing || exists(&task.dest)) {
        backupdest = files::backup_local(false, &task.dest)?;
    }
    files::atomic_write(&files::realpath(&task.dest), data, None, task.validation())?;
    Ok(backupdest)
}

fn absent(task: &Task, line: Option<String>) -> ModuleResult {
    let dest = task.dest.as_str();
    if !exists(dest) {
        return Ok(map(vec![("changed", false.into()), ("msg", "file not present".into())]));
    }
    let mut diff = content_diff(dest);
    let lines = split_lines(&fs::read(dest).map_err(|e| files::os_failure(e, dest))?);
    if task.diff {
        diff.insert("before", files::to_text(&lines.concat()).into());
    }
    let mut kept = Vec::new();
    let mut found = 0;
    for cur in lines {
        let hit = if let Some((_, re)) = &task.regexp {
            search(re, &cur)?.is_some()
        } else if let Some(needle) = &task.search_string {
            contains(&cur, needle.as_bytes())
        } else {
            line.as_deref().map(str::as_bytes) == Some(rstrip_newlines(&cur))
        };
        if hit {
            found += 1;
        } else {
            kept.push(cur);
        }
    }
    let changed = found > 0;
    if task.diff {
        diff.insert("after", files::to_text(&kept.concat()).into());
    }
    let backupdest = write_if_changed(task, changed, &kept.concat(), false)?;
    let msg = if changed { format!("{} line(s) removed", found) } else { String::new() };
    let mut result = map(vec![("found", Value::Int(found)), ("backup", backupdest.as_str().into())]);
    if !backupdest.is_empty() {
        result.insert("backup_file", backupdest.into());
    }
    conclude(task, changed, msg, diff, result)
}

/// `lines._conclude`: apply mode/owner/group, then changed, msg and (diff mode) both diffs.
fn conclude(task: &Task, mut changed: bool, mut msg: String, diff: Map, mut result: Map) -> ModuleResult {
    let mut attr_diff = Map::new();
    if files::apply_attributes(task.check, &task.dest, task.attrs, Some(&mut attr_diff), true)? {
        if changed {
            msg.push_str(" and ");
        }
        changed = true;
        msg.push_str("ownership, perms or SE linux context changed");
    }
    result.insert("changed", changed.into());
    result.insert("msg", msg.into());
    if task.diff {
        let header = format!("{} (file attributes)", task.dest);
        attr_diff.insert("before_header", header.as_str().into());
        attr_diff.insert("after_header", header.into());
        result.insert("diff", Value::List(vec![Value::Dict(diff), Value::Dict(attr_diff)]));
    }
    Ok(result)
}

// -------------------------------------------------------------------------------- blockinfile

const BLOCKINFILE_ARGS: &[&str] = &[
    "path", "dest", "destfile", "name", "state", "marker", "block", "content", "insertafter", "insertbefore", "create", "backup", "validate",
    "marker_begin", "marker_end", "append_newline", "prepend_newline", "mode", "owner", "group", "unsafe_writes", "attributes", "seuser", "serole",
    "setype", "selevel",
];

/// `bytes.splitlines(True)`: lines end at `\n`, `\r` or `\r\n`, and keep their end.
fn splitlines_keep(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' || data[i] == b'\r' {
            if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            out.push(data[start..=i].to_vec());
            start = i + 1;
        }
        i += 1;
    }
    if start < data.len() {
        out.push(data[start..].to_vec());
    }
    out
}

/// `str(value)` as bytes, for an argument given or its default.
fn arg_bytes(args: &Map, name: &str, default: &str) -> Vec<u8> {
    match args.get(name) {
        Some(v) => py_str(v).into_bytes(),
        None => default.as_bytes().to_vec(),
    }
}

/// ansible.builtin.blockinfile: a port of the Python runtime's `lines.blockinfile`.
pub fn blockinfile(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, BLOCKINFILE_ARGS, "blockinfile")?;
    let path = match pop_arg(args, &["path", "dest", "destfile", "name"]) {
        Some(p) => files::expand(p),
        None => return fail("missing required arguments: path"),
    };
    let (insertbefore, insertafter) = (arg(args, "insertbefore").map(py_str), arg(args, "insertafter").map(py_str));
    if insertbefore.is_some() && insertafter.is_some() {
        return fail("parameters are mutually exclusive: insertbefore|insertafter");
    }
    let state = args.get("state").map_or_else(|| "present".to_string(), py_str);
    if state != "present" && state != "absent" {
        return fail(format!("value of state must be one of: absent, present, got: {}", state));
    }
    if files::isdir(&path) {
        return fail_with(format!("Path {} is a directory !", path), vec![("rc", Value::Int(256))]);
    }
    let path_exists = exists(&path);
    let (original, mut lines) = if !path_exists {
        if !arg_bool(args, "create", false)? {
            return fail_with(format!("Path {} does not exist !", path), vec![("rc", Value::Int(257))]);
        }
        let destpath = files::dirname(&path);
        if !destpath.is_empty() && !exists(&destpath) && !ctx.check {
            if let Err(e) = fs::create_dir_all(&destpath) {
                let code = e.raw_os_error().unwrap_or(0);
                return fail(format!("Error creating {} Error code: {} Error description: {}", destpath, code, crate::sys::strerror(&e)));
            }
        }
        (None, Vec::new())
    } else {
        let data = fs::read(&path).map_err(|e| files::os_failure(e, &path))?;
        let lines = splitlines_keep(&data);
        (Some(data), lines)
    };
    let mut diff = content_diff(&path);
    if ctx.diff && original.as_ref().map_or(false, |o| !o.is_empty()) {
        diff.insert("before", files::to_text(original.as_deref().unwrap_or_default()).into());
    }
    let mut block = pop_arg(args, &["block", "content"]).map_or_else(Vec::new, |v| py_str(v).into_bytes());
    let marker = arg_bytes(args, "marker", "# {mark} ANSIBLE MANAGED BLOCK");
    let present = state == "present";
    if !present && !path_exists {
        return Ok(map(vec![("changed", false.into()), ("msg", format!("File {} not present", path).into())]));
    }
    let insertafter = if insertbefore.is_none() && insertafter.is_none() { Some("EOF".to_string()) } else { insertafter };
    let insertre = match (&insertafter, &insertbefore) {
        (Some(a), _) if a != "EOF" => Some(compile(args, "_insertafter_ir", a)?),
        (None, Some(b)) if b != "BOF" => Some(compile(args, "_insertbefore_ir", b)?),
        _ => None,
    };
    let mark = |name: &str, default: &str| -> Vec<u8> {
        let mut m = replace_bytes(&marker, b"{mark}", &arg_bytes(args, name, default));
        m.push(b'\n');
        m
    };
    let (marker0, marker1) = (mark("marker_begin", "BEGIN"), mark("marker_end", "END"));
    let mut blocklines = Vec::new();
    if present && !block.is_empty() {
        if !block.ends_with(b"\n") {
            block.push(b'\n');
        }
        blocklines.push(marker0.clone());
        blocklines.extend(splitlines_keep(&block));
        blocklines.push(marker1.clone());
    }
    let (mut n0, mut n1) = (None, None);
    for (i, cur) in lines.iter().enumerate() {
        if *cur == marker0 {
            n0 = Some(i);
        }
        if *cur == marker1 {
            n1 = Some(i);
        }
    }
    let mut n0 = match (n0, n1) {
        (Some(a), Some(b)) if a < b => {
            lines.drain(a..=b);
            a
        }
        (Some(a), Some(b)) => {
            lines.drain(b..=a);
            b
        }
        _ => match &insertre {
            // (?m): the whole file is searched, and the block goes after (before) the line the
            // match ends (starts) in, counted as Python counts it (lines.blockinfile)
            Some(re) if arg_bool(args, "_insert_multiline", false)? => {
                let data = original.as_deref().unwrap_or_default();
                match search(re, data)? {
                    None => lines.len(),
                    Some(m) if insertafter.is_some() => newlines_in_first_chars(data, m.end) + 1,
                    Some(m) => newlines_in_first_chars(data, m.start),
                }
            }
            Some(re) => {
                let mut found = None;
                for (i, cur) in lines.iter().enumerate() {
                    if search(re, cur)?.is_some() {
                        found = Some(i);
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            }
            None if insertbefore.is_some() => 0,
            None => lines.len(),
        },
    };
    if n0 > 0 && !lines[n0 - 1].ends_with(b"\n") {
        lines[n0 - 1].push(b'\n');
    }
    if arg_bool(args, "prepend_newline", false)? && present && n0 != 0 && lines[n0 - 1] != b"\n" {
        lines.insert(n0, b"\n".to_vec());
        n0 += 1;
    }
    let count = blocklines.len();
    let removed = blocklines.is_empty();
    lines.splice(n0..n0, blocklines);
    if arg_bool(args, "append_newline", false)? && present {
        let after = n0 + count;
        if after < lines.len() && lines[after] != b"\n" {
            lines.insert(after, b"\n".to_vec());
        }
    }
    let result_bytes = lines.concat();
    if ctx.diff {
        diff.insert("after", files::to_text(&result_bytes).into());
    }
    let (msg, changed) = if original.as_deref() == Some(&result_bytes[..]) {
        ("", false)
    } else if original.is_none() {
        ("File created", true)
    } else if removed {
        ("Block removed", true)
    } else {
        ("Block inserted", true)
    };
    let task = Task { check: ctx.check, diff: ctx.diff, dest: path, regexp: None, search_string: None, attrs: Attrs::from_args(args), backup: arg_bool(args, "backup", false)?, validate: validate_arg(args), environment: ctx.environment };
    let mut result = Map::new();
    if changed && !task.check {
        if task.backup && path_exists {
            result.insert("backup_file", files::backup_local(false, &task.dest)?.into());
        }
        files::atomic_write(&files::realpath(&task.dest), &result_bytes, None, task.validation())?;
    }
    if task.check && !path_exists {
        result.insert("changed", changed.into());
        result.insert("msg", msg.into());
        if task.diff {
            result.insert("diff", Value::Dict(diff));
        }
        return Ok(result);
    }
    conclude(&task, changed, msg.to_string(), diff, result)
}

/// `bytes.replace(old, new)`.
fn replace_bytes(data: &[u8], old: &[u8], new: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(old) {
            out.extend_from_slice(new);
            i += old.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

// ------------------------------------------------------------------------------------ replace

const REPLACE_ARGS: &[&str] = &[
    "path", "dest", "destfile", "name", "regexp", "replace", "after", "before", "backup", "validate", "encoding", "mode", "owner", "group",
    "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel",
];

/// `data.decode("utf-8", "surrogateescape")` as code points: a byte that is not part of valid
/// UTF-8 becomes U+DC80..U+DCFF.
fn decode_escaped(data: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.extend(text.chars().map(|c| c as u32));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.extend(std::str::from_utf8(good).unwrap_or_default().chars().map(|c| c as u32));
                let n = e.error_len().unwrap_or(bad.len());
                out.extend(bad[..n].iter().map(|&b| 0xdc00 + b as u32));
                rest = &bad[n..];
            }
        }
    }
    out
}

/// `text.encode("utf-8", "surrogateescape")`.
fn encode_escaped(units: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len());
    for &u in units {
        if (0xdc80..=0xdcff).contains(&u) {
            out.push((u - 0xdc00) as u8);
        } else if let Some(c) = char::from_u32(u) {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// A `str` pattern's pre-parsed tree (the controller applied the flags: MULTILINE anchors,
/// DOTALL's any character).
fn compile_str(args: &Map, key: &str, pattern: &str) -> R<Regex> {
    match args.get(key) {
        Some(tree) => Regex::from_tree(tree).or_else(|e| fail(format!("regular expression {:?}: {}", pattern, e))),
        None => fail(format!("regular expression {:?} arrived without its parse tree ({}); hint: recompile the artifact", pattern, key)),
    }
}

/// ansible.builtin.replace: a port of the Python runtime's `lines.replace`.
pub fn replace(ctx: &mut Ctx, args: &Map) -> ModuleResult {
    check_unknown(args, REPLACE_ARGS, "replace")?;
    let path = match pop_arg(args, &["path", "dest", "destfile", "name"]) {
        Some(p) => files::expand(p),
        None => return fail("missing required arguments: path"),
    };
    let regexp = match arg(args, "regexp") {
        Some(r) => py_str(r),
        None => return fail("missing required arguments: regexp"),
    };
    let repl = arg(args, "replace").map_or_else(String::new, py_str);
    let (after, before) = (arg(args, "after").map(py_str).unwrap_or_default(), arg(args, "before").map(py_str).unwrap_or_default());
    let encoding = arg(args, "encoding").map(py_str).unwrap_or_default();
    if !encoding.is_empty() && !["utf-8", "utf8", "UTF-8", "UTF8"].contains(&encoding.as_str()) {
        return fail(format!("encoding {:?} is not supported by the native runner (only utf-8)", encoding));
    }
    let mut result = map(vec![("rc", Value::Int(0))]);
    if files::isdir(&path) {
        return fail_with(format!("Path {} is a directory !", path), vec![("rc", Value::Int(256))]);
    }
    if !exists(&path) {
        return fail_with(format!("Path {} does not exist !", path), vec![("rc", Value::Int(257))]);
    }
    let data = fs::read(&path).map_err(|e| files::os_failure(e, &path))?;
    let contents = decode_escaped(&data);
    let mut indices = None;
    let section: &[u32] = if !after.is_empty() || !before.is_empty() {
        let pattern = match (after.is_empty(), before.is_empty()) {
            (false, false) => format!("{}(?P<subsection>.*?){}", after, before),
            (false, true) => format!("{}(?P<subsection>.*)", after),
            _ => format!("(?P<subsection>.*){}", before),
        };
        let re = compile_str(args, "_section_ir", &pattern)?;
        let group = args.get("_section_group").and_then(Value::as_i64).unwrap_or(0) as usize;
        let found = re.search_from(&contents, 0, false).or_else(fail)?;
        let span = found.as_ref().and_then(|m| m.groups.get(group.wrapping_sub(1)).copied().flatten());
        match span {
            Some((start, end)) => {
                indices = Some((start, end));
                &contents[start..end]
            }
            None => {
                result.insert("msg", format!("Pattern for before/after params did not match the given file: {}", pattern).into());
                result.insert("changed", false.into());
                return Ok(result);
            }
        }
    } else {
        &contents
    };
    let re = compile_str(args, "_regexp_ir", &regexp)?;
    let tpl: Vec<u32> = repl.chars().map(|c| c as u32).collect();
    let (mut new_text, count) = re.subn_units(section, &tpl).or_else(|e| fail(format!("Unable to process replace due to error: {}", e.trim_start_matches("error: "))))?;
    let (msg, changed) = if count > 0 && section != &new_text[..] {
        if let Some((start, end)) = indices {
            new_text = [&contents[..start], &new_text[..], &contents[end..]].concat();
        }
        if ctx.diff {
            let text = |units: &[u32]| files::to_text(&encode_escaped(units));
            result.insert("diff", Value::Dict(map(vec![
                ("before_header", path.as_str().into()), ("before", text(&contents).into()),
                ("after_header", path.as_str().into()), ("after", text(&new_text).into()),
            ])));
        }
        (format!("{} replacements made", count), true)
    } else {
        (String::new(), false)
    };
    if changed && !ctx.check {
        if arg_bool(args, "backup", false)? && exists(&path) {
            result.insert("backup_file", files::backup_local(false, &path)?.into());
        }
        let validate = validate_arg(args);
        files::atomic_write(&files::realpath(&path), &encode_escaped(&new_text), None, validate.as_deref().map(|v| (ctx.environment, v)))?;
    }
    let (mut msg, mut changed) = (msg, changed);
    if files::apply_attributes(ctx.check, &path, Attrs::from_args(args), None, true)? {
        if changed {
            msg.push_str(" and ");
        }
        changed = true;
        msg.push_str("ownership, perms or SE linux context changed");
    }
    result.insert("msg", msg.into());
    result.insert("changed", changed.into());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> String {
        crate::test_dir("lines", name).to_string_lossy().into_owned()
    }

    const CONF: &str = "# comment\nPort 22\nPermitRootLogin yes\n#ListenAddress 0.0.0.0\nUsePAM yes\n";

    fn run(check: bool, diff: bool, args: &str) -> ModuleResult {
        let args = crate::json::parse(args).unwrap();
        let (env, embedded) = (Map::new(), Map::new());
        let mut ctx = Ctx { module: "lineinfile", check, diff, environment: &env, files: &embedded, warnings: Vec::new() };
        lineinfile(&mut ctx, args.as_dict().unwrap())
    }

    fn setup(name: &str, text: &str) -> String {
        let dir = temp_dir(name);
        let f = format!("{}/f.conf", dir);
        fs::write(&f, text).unwrap();
        f
    }

    // Trees below are what re._parser.parse gives for the pattern (format in regex.rs).
    const PERMIT: &str = r#"[["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 101], ["LITERAL", 114], ["LITERAL", 109], ["LITERAL", 105], ["LITERAL", 116]]"#;
    const PORT_DIGITS: &str = r#"[["AT", "AT_BEGINNING"], ["LITERAL", 80], ["LITERAL", 111], ["LITERAL", 114], ["LITERAL", 116], ["LITERAL", 32], ["SUBPATTERN", [1, [["MAX_REPEAT", [1, -1, [["IN", [["CATEGORY", "CATEGORY_DIGIT"]]]]]]]]]]"#;
    const YES_END: &str = r#"[["LITERAL", 121], ["LITERAL", 101], ["LITERAL", 115], ["AT", "AT_END"]]"#;

    #[test]
    fn append_at_eof_with_diff() {
        let f = setup("append", CONF);
        let res = run(false, true, &format!(r#"{{"path": "{}", "line": "MaxAuthTries 3"}}"#, f)).ok().unwrap();
        assert_eq!(res.get("msg"), Some(&Value::from("line added")));
        assert_eq!(fs::read_to_string(&f).unwrap(), format!("{}MaxAuthTries 3\n", CONF));
        let diff = res.get("diff").unwrap().as_list().unwrap();
        assert_eq!(diff[0].get("after"), Some(&Value::from(format!("{}MaxAuthTries 3\n", CONF))));
        assert_eq!(diff[1].get("before_header"), Some(&Value::from(format!("{} (file attributes)", f))));
        let again = run(false, false, &format!(r#"{{"path": "{}", "line": "MaxAuthTries 3"}}"#, f)).ok().unwrap();
        assert_eq!(again.get("changed"), Some(&Value::Bool(false)));
    }

    #[test]
    fn regexp_replaces_and_backrefs_expand() {
        let f = setup("regexp", CONF);
        let res = run(false, false, &format!(r#"{{"path": "{}", "regexp": "^Permit", "_regexp_ir": {}, "line": "PermitRootLogin no"}}"#, f, PERMIT)).ok().unwrap();
        assert_eq!(res.get("msg"), Some(&Value::from("line replaced")));
        let res = run(false, false, &format!(r#"{{"path": "{}", "regexp": "^Port (\\d+)", "_regexp_ir": {}, "line": "Port \\g<1>0", "backrefs": true}}"#, f, PORT_DIGITS)).ok().unwrap();
        assert_eq!(res.get("changed"), Some(&Value::Bool(true)));
        assert_eq!(fs::read_to_string(&f).unwrap(), "# comment\nPort 220\nPermitRootLogin no\n#ListenAddress 0.0.0.0\nUsePAM yes\n");
    }

    #[test]
    fn insertafter_firstmatch_and_check_mode() {
        let f = setup("insert", CONF);
        let args = format!(r#"{{"path": "{}", "line": "after-first", "insertafter": "yes$", "_insertafter_ir": {}, "firstmatch": true}}"#, f, YES_END);
        let res = run(true, false, &args).ok().unwrap();
        assert_eq!(res.get("changed"), Some(&Value::Bool(true)));
        assert_eq!(fs::read_to_string(&f).unwrap(), CONF);
        run(false, false, &args).ok().unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "# comment\nPort 22\nPermitRootLogin yes\nafter-first\n#ListenAddress 0.0.0.0\nUsePAM yes\n");
    }

    #[test]
    fn absent_with_backup_and_missing_file() {
        let f = setup("absent", CONF);
        let res = run(false, false, &format!(r#"{{"path": "{}", "line": "Port 22", "state": "absent", "backup": true}}"#, f)).ok().unwrap();
        assert_eq!(res.get("found"), Some(&Value::Int(1)));
        assert_eq!(res.get("msg"), Some(&Value::from("1 line(s) removed")));
        let backup = res.get("backup_file").and_then(Value::as_str).unwrap();
        assert_eq!(fs::read_to_string(backup).unwrap(), CONF);
        let res = run(false, false, &format!(r#"{{"path": "{}/none", "line": "x", "state": "absent"}}"#, files::dirname(&f))).ok().unwrap();
        assert_eq!(res.get("msg"), Some(&Value::from("file not present")));
    }

    #[test]
    fn create_with_mode_and_failures() {
        let dir = temp_dir("create");
        let res = run(false, false, &format!(r#"{{"path": "{}/sub/new.conf", "line": "a=1", "create": true, "mode": "0600"}}"#, dir)).ok().unwrap();
        assert_eq!(res.get("msg"), Some(&Value::from("line added and ownership, perms or SE linux context changed")));
        let err = run(false, false, &format!(r#"{{"path": "{}/none.conf", "line": "a=1"}}"#, dir)).err().unwrap();
        assert_eq!(err.msg, format!("Destination {}/none.conf does not exist !", dir));
        let err = run(false, false, &format!(r#"{{"path": "{}", "regexp": "^x", "line": "x"}}"#, dir)).err().unwrap();
        assert!(err.msg.contains("is a directory"));
        let f = setup("noir", CONF);
        let err = run(false, false, &format!(r#"{{"path": "{}", "regexp": "^x", "line": "x"}}"#, f)).err().unwrap();
        assert!(err.msg.contains("without its parse tree"), "{}", err.msg);
        let err = run(false, false, &format!(r#"{{"path": "{}", "regexp": "(?i)x", "_regexp_ir": [], "line": "x"}}"#, f)).err().unwrap();
        assert!(err.msg.contains("inline flags"), "{}", err.msg);
    }

    #[test]
    fn inline_flags_and_newlines_counted_as_python() {
        assert!(!has_inline_flags("(?m)^a") && !has_inline_flags("(?sx) a . b") && !has_inline_flags("\\(?i)"));
        assert!(has_inline_flags("(?i)a") && has_inline_flags("(?m:a)") && has_inline_flags("(?-m:a)") && has_inline_flags("(?mu)a"));
        assert!(!has_inline_flags("(?:a)") && !has_inline_flags("(?P<n>a)"));
        // "a\nb\xff\nc\n".decode("utf-8", "surrogateescape").count("\n", 0, n)
        let data = b"a\nb\xff\nc\n";
        let counts: Vec<usize> = (0..9).map(|n| newlines_in_first_chars(data, n)).collect();
        assert_eq!(counts, vec![0, 0, 1, 1, 1, 2, 2, 3, 3]);
        // "é\n" is two characters from three bytes
        assert_eq!((newlines_in_first_chars("é\n".as_bytes(), 1), newlines_in_first_chars("é\n".as_bytes(), 2)), (0, 1));
    }

    #[test]
    fn no_trailing_newline_gets_one() {
        let f = setup("trail", "one\ntwo");
        run(false, false, &format!(r#"{{"path": "{}", "line": "last"}}"#, f)).ok().unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "one\ntwo\nlast\n");
    }
}
