"""Module family for in-place text edits: lineinfile, blockinfile, replace.

Standard library only; Python 3.8 syntax. The algorithms are ports of ansible-core's
modules (same matching, same ``changed``/``msg`` strings, same diffs); writes are atomic and
follow symlinks to the real file, as Ansible's do.
"""

import os
import re

from . import _common as c

LINESEP = os.linesep.encode()

LINEINFILE_ARGS = {"path", "dest", "destfile", "name", "state", "regexp", "regex",
                   "search_string", "line", "value", "insertafter", "insertbefore", "backrefs",
                   "create", "backup", "firstmatch", "validate", "mode", "owner", "group",
                   "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel"}
BLOCKINFILE_ARGS = {"path", "dest", "destfile", "name", "state", "marker", "block", "content",
                    "insertafter", "insertbefore", "create", "backup", "validate",
                    "marker_begin", "marker_end", "append_newline", "prepend_newline", "mode",
                    "owner", "group", "unsafe_writes", "attributes", "seuser", "serole",
                    "setype", "selevel"}
REPLACE_ARGS = {"path", "dest", "destfile", "name", "regexp", "replace", "after", "before",
                "backup", "validate", "encoding", "mode", "owner", "group", "unsafe_writes",
                "attributes", "seuser", "serole", "setype", "selevel"}


def _b(value):
    return str(value).encode("utf-8", "surrogateescape")


def _path(args):
    path = c.pop_arg(args, ("path", "dest", "destfile", "name"))
    if path is None:
        c.fail("missing required arguments: path")
    return c.expand(path)


def _write(ctx, args, data, path):
    c.atomic_write(os.path.realpath(path), data, validate=args.get("validate"), ctx=ctx,
                   unsafe=c.unsafe_writes(ctx, args))


def _attrs(ctx, args, path, changed, msg, diff):
    if c.apply_attributes(ctx, path, args.get("mode"), args.get("owner"), args.get("group"),
                          diff, attributes=args.get("attributes")):
        if changed:
            msg += " and "
        changed = True
        msg += "ownership, perms or SE linux context changed"
    return msg, changed


def _conclude(ctx, args, path, changed, msg, diff, result):
    """Apply mode/owner/group, then fill ``result`` with changed, msg and (in diff mode) the diffs."""
    attr_diff = {}
    msg, changed = _attrs(ctx, args, path, changed, msg, attr_diff)
    result.update({"changed": changed, "msg": msg})
    if ctx.diff_mode:
        result["diff"] = _finish(ctx, path, diff, attr_diff)
    return result


def _finish(ctx, path, diff, attr_diff):
    attr_diff["before_header"] = f"{path} (file attributes)"
    attr_diff["after_header"] = f"{path} (file attributes)"
    return [diff, attr_diff]


def _content_diff(path):
    return {"before": "", "after": "", "before_header": f"{path} (content)",
            "after_header": f"{path} (content)"}


# ---------------------------------------------------------------------------------- lineinfile

@c.module
def lineinfile(ctx, args):
    """ansible.builtin.lineinfile."""
    c.check_unknown(args, LINEINFILE_ARGS, "lineinfile")
    path = _path(args)
    state = args.get("state", "present")
    regexp = c.pop_arg(args, ("regexp", "regex"))
    search_string = args.get("search_string")
    line = c.pop_arg(args, ("line", "value"))
    backrefs = c.boolean(args.get("backrefs", False), "backrefs")
    if args.get("insertbefore") is not None and args.get("insertafter") is not None:
        c.fail("parameters are mutually exclusive: insertbefore|insertafter")
    if regexp is not None and search_string is not None:
        c.fail("parameters are mutually exclusive: regexp|search_string")
    if backrefs and search_string is not None:
        c.fail("parameters are mutually exclusive: backrefs|search_string")
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    if regexp == "" or search_string == "":
        name = "regular expression" if regexp == "" else "search string"
        msg = (f"The {name} is an empty string, which will match every line in the file. This "
               "may have unintended consequences, such as replacing the last line in the "
               "file rather than appending.")
        if regexp == "":
            msg += " If this is desired, use '^' to match every line in the file and avoid this warning."
        ctx.warn(msg)
    if os.path.isdir(path):
        c.fail(f"Path {path} is a directory !", rc=256)
    if state == "present":
        if backrefs and regexp is None:
            c.fail("regexp is required with backrefs=true")
        if line is None:
            c.fail("line is required with state=present")
        ins_bef, ins_aft = args.get("insertbefore"), args.get("insertafter")
        if ins_bef is None and ins_aft is None:
            ins_aft = "EOF"
        return _present(ctx, args, path, regexp, search_string, str(line), ins_aft, ins_bef,
                        c.boolean(args.get("create", False), "create"),
                        c.boolean(args.get("backup", False), "backup"), backrefs,
                        c.boolean(args.get("firstmatch", False), "firstmatch"))
    if (regexp, search_string, line) == (None, None, None):
        c.fail("one of line, search_string, or regexp is required with state=absent")
    return _absent(ctx, args, path, regexp, search_string, line,
                   c.boolean(args.get("backup", False), "backup"))


def _present(ctx, args, dest, regexp, search_string, line, insertafter, insertbefore, create,
             backup, backrefs, firstmatch):
    diff = _content_diff(dest)
    if not os.path.exists(dest):
        if not create:
            c.fail(f"Destination {dest} does not exist !", rc=257)
        destpath = os.path.dirname(dest)
        if destpath and not os.path.exists(destpath) and not ctx.check_mode:
            try:
                os.makedirs(destpath)
            except OSError as exc:
                c.fail(f"Error creating {destpath} ({exc})")
        lines = []
    else:
        lines = c.read_lines_bytes(dest)
    if ctx.diff_mode:
        diff["before"] = c.to_text(b"".join(lines))

    bre_m = re.compile(_b(regexp)) if regexp is not None else None
    if insertafter not in (None, "BOF", "EOF"):
        bre_ins = re.compile(_b(insertafter))
    elif insertbefore not in (None, "BOF"):
        bre_ins = re.compile(_b(insertbefore))
    else:
        bre_ins = None

    index = [-1, -1]
    match = None
    exact_line_match = False
    b_line = _b(line)
    if bre_m is not None:
        for lineno, cur in enumerate(lines):
            found = bre_m.search(cur)
            if found:
                index[0] = lineno
                match = found
                if firstmatch:
                    break
    if search_string is not None:
        needle = _b(search_string)
        for lineno, cur in enumerate(lines):
            found = needle in cur
            if found:
                index[0] = lineno
                match = found
                if firstmatch:
                    break
    if not match:
        for lineno, cur in enumerate(lines):
            if b_line == cur.rstrip(b"\r\n"):
                index[0] = lineno
                exact_line_match = True
            elif bre_ins is not None and bre_ins.search(cur):
                if insertafter:
                    index[1] = lineno + 1
                    if firstmatch:
                        break
                if insertbefore:
                    index[1] = lineno
                    if firstmatch:
                        break

    msg = ""
    changed = False
    if index[0] != -1:
        if backrefs and match:
            new_line = match.expand(b_line)
        else:
            new_line = b_line
        if not new_line.endswith(LINESEP):
            new_line += LINESEP
        if (regexp, search_string, match) == (None, None, None) and not exact_line_match:
            if insertafter and insertafter != "EOF":
                if lines and lines[-1][-1:] not in (b"\n", b"\r"):
                    lines[-1] = lines[-1] + LINESEP
                if len(lines) == index[1]:
                    if lines[index[1] - 1].rstrip(b"\r\n") != b_line:
                        lines.append(b_line + LINESEP)
                        msg, changed = "line added", True
                elif lines[index[1]].rstrip(b"\r\n") != b_line:
                    lines.insert(index[1], b_line + LINESEP)
                    msg, changed = "line added", True
            elif insertbefore and insertbefore != "BOF":
                if index[1] <= 0:
                    if lines[index[1]].rstrip(b"\r\n") != b_line:
                        lines.insert(index[1], b_line + LINESEP)
                        msg, changed = "line added", True
                elif lines[index[1] - 1].rstrip(b"\r\n") != b_line:
                    lines.insert(index[1], b_line + LINESEP)
                    msg, changed = "line added", True
        elif lines[index[0]] != new_line:
            lines[index[0]] = new_line
            msg, changed = "line replaced", True
    elif backrefs:
        pass
    elif insertbefore == "BOF" or insertafter == "BOF":
        lines.insert(0, b_line + LINESEP)
        msg, changed = "line added", True
    elif insertafter == "EOF" or index[1] == -1:
        if lines and lines[-1][-1:] not in (b"\n", b"\r"):
            lines.append(LINESEP)
        lines.append(b_line + LINESEP)
        msg, changed = "line added", True
    elif insertafter and index[1] != -1:
        if len(lines) == index[1]:
            if lines[index[1] - 1].rstrip(b"\r\n") != b_line:
                lines.append(b_line + LINESEP)
                msg, changed = "line added", True
        elif b_line != lines[index[1]].rstrip(b"\n\r"):
            lines.insert(index[1], b_line + LINESEP)
            msg, changed = "line added", True
    else:
        lines.insert(index[1], b_line + LINESEP)
        msg, changed = "line added", True

    if ctx.diff_mode:
        diff["after"] = c.to_text(b"".join(lines))
    backupdest = ""
    if changed and not ctx.check_mode:
        if backup and os.path.exists(dest):
            backupdest = c.backup_local(ctx, dest)
        _write(ctx, args, b"".join(lines), dest)
    result = {"backup": backupdest}
    if backupdest:
        result["backup_file"] = backupdest
    if ctx.check_mode and not os.path.exists(dest):
        result.update({"changed": changed, "msg": msg})
        if ctx.diff_mode:
            result["diff"] = diff
        return result
    return _conclude(ctx, args, dest, changed, msg, diff, result)


def _absent(ctx, args, dest, regexp, search_string, line, backup):
    if not os.path.exists(dest):
        return {"changed": False, "msg": "file not present"}
    diff = _content_diff(dest)
    lines = c.read_lines_bytes(dest)
    if ctx.diff_mode:
        diff["before"] = c.to_text(b"".join(lines))
    bre_c = re.compile(_b(regexp)) if regexp is not None else None
    b_line = _b(line) if line is not None else None
    found = []

    def keep(cur):
        if bre_c is not None:
            hit = bre_c.search(cur)
        elif search_string is not None:
            hit = _b(search_string) in cur
        else:
            hit = b_line == cur.rstrip(b"\r\n")
        if hit:
            found.append(cur)
        return not hit

    lines = [cur for cur in lines if keep(cur)]
    changed = len(found) > 0
    if ctx.diff_mode:
        diff["after"] = c.to_text(b"".join(lines))
    backupdest = ""
    if changed and not ctx.check_mode:
        if backup:
            backupdest = c.backup_local(ctx, dest)
        _write(ctx, args, b"".join(lines), dest)
    msg = f"{len(found)} line(s) removed" if changed else ""
    result = {"found": len(found), "backup": backupdest}
    if backupdest:
        result["backup_file"] = backupdest
    return _conclude(ctx, args, dest, changed, msg, diff, result)


# --------------------------------------------------------------------------------- blockinfile

@c.module
def blockinfile(ctx, args):
    """ansible.builtin.blockinfile."""
    c.check_unknown(args, BLOCKINFILE_ARGS, "blockinfile")
    path = _path(args)
    if args.get("insertbefore") is not None and args.get("insertafter") is not None:
        c.fail("parameters are mutually exclusive: insertbefore|insertafter")
    state = args.get("state", "present")
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    if os.path.isdir(path):
        c.fail(f"Path {path} is a directory !", rc=256)
    path_exists = os.path.exists(path)
    if not path_exists:
        if not c.boolean(args.get("create", False), "create"):
            c.fail(f"Path {path} does not exist !", rc=257)
        destpath = os.path.dirname(path)
        if destpath and not os.path.exists(destpath) and not ctx.check_mode:
            try:
                os.makedirs(destpath)
            except OSError as exc:
                c.fail(f"Error creating {destpath} Error code: {exc.errno} Error description: {exc.strerror}")
        original = None
        lines = []
    else:
        with open(path, "rb") as handle:
            original = handle.read()
        lines = original.splitlines(True)
    diff = _content_diff(path)
    if ctx.diff_mode and original:
        diff["before"] = c.to_text(original)

    insertbefore, insertafter = args.get("insertbefore"), args.get("insertafter")
    block = _b(c.pop_arg(args, ("block", "content"), ""))
    marker = _b(args.get("marker", "# {mark} ANSIBLE MANAGED BLOCK"))
    present = state == "present"
    blank_line = [LINESEP]
    if not present and not path_exists:
        return {"changed": False, "msg": f"File {path} not present"}
    if insertbefore is None and insertafter is None:
        insertafter = "EOF"
    if insertafter not in (None, "EOF"):
        insertre = re.compile(_b(insertafter))
    elif insertbefore not in (None, "BOF"):
        insertre = re.compile(_b(insertbefore))
    else:
        insertre = None

    marker0 = marker.replace(b"{mark}", _b(args.get("marker_begin", "BEGIN"))) + LINESEP
    marker1 = marker.replace(b"{mark}", _b(args.get("marker_end", "END"))) + LINESEP
    if present and block:
        if not block.endswith(LINESEP):
            block += LINESEP
        blocklines = [marker0] + block.splitlines(True) + [marker1]
    else:
        blocklines = []

    n0 = n1 = None
    for i, cur in enumerate(lines):
        if cur == marker0:
            n0 = i
        if cur == marker1:
            n1 = i
    if None in (n0, n1):
        n0 = None
        if insertre is not None:
            if insertre.flags & re.MULTILINE:
                found = insertre.search(original or b"")
                if found:
                    text = c.to_text(original)
                    if insertafter:
                        n0 = text.count("\n", 0, found.end())
                    elif insertbefore:
                        n0 = text.count("\n", 0, found.start())
            else:
                for i, cur in enumerate(lines):
                    if insertre.search(cur):
                        n0 = i
            if n0 is None:
                n0 = len(lines)
            elif insertafter is not None:
                n0 += 1
        elif insertbefore is not None:
            n0 = 0
        else:
            n0 = len(lines)
    elif n0 < n1:
        lines[n0:n1 + 1] = []
    else:
        lines[n1:n0 + 1] = []
        n0 = n1

    if n0 > 0 and not lines[n0 - 1].endswith(LINESEP):
        lines[n0 - 1] += LINESEP
    if c.boolean(args.get("prepend_newline", False)) and present:
        if n0 != 0 and lines[n0 - 1] != LINESEP:
            lines[n0:n0] = blank_line
            n0 += 1
    lines[n0:n0] = blocklines
    if c.boolean(args.get("append_newline", False)) and present:
        after = n0 + len(blocklines)
        if after < len(lines) and lines[after] != LINESEP:
            lines[after:after] = blank_line
    result_bytes = b"".join(lines)
    if ctx.diff_mode:
        diff["after"] = c.to_text(result_bytes)

    if original == result_bytes:
        msg, changed = "", False
    elif original is None:
        msg, changed = "File created", True
    elif not blocklines:
        msg, changed = "Block removed", True
    else:
        msg, changed = "Block inserted", True

    result = {}
    if changed and not ctx.check_mode:
        if c.boolean(args.get("backup", False)) and path_exists:
            result["backup_file"] = c.backup_local(ctx, path)
        _write(ctx, args, result_bytes, path)
    if ctx.check_mode and not path_exists:
        result.update({"changed": changed, "msg": msg})
        if ctx.diff_mode:
            result["diff"] = diff
        return result
    return _conclude(ctx, args, path, changed, msg, diff, result)


# ------------------------------------------------------------------------------------- replace

@c.module
def replace(ctx, args):
    """ansible.builtin.replace."""
    c.check_unknown(args, REPLACE_ARGS, "replace")
    path = _path(args)
    regexp = args.get("regexp")
    if regexp is None:
        c.fail("missing required arguments: regexp")
    repl = args.get("replace")
    repl = "" if repl is None else str(repl)
    after, before = args.get("after"), args.get("before")
    encoding = args.get("encoding") or "utf-8"
    result = {"rc": 0}
    if os.path.isdir(path):
        c.fail(f"Path {path} is a directory !", rc=256)
    if not os.path.exists(path):
        c.fail(f"Path {path} does not exist !", rc=257)
    with open(path, "rb") as handle:
        contents = handle.read().decode(encoding, "surrogateescape")
    pattern = ""
    if after and before:
        pattern = f"{after}(?P<subsection>.*?){before}"
    elif after:
        pattern = f"{after}(?P<subsection>.*)"
    elif before:
        pattern = f"(?P<subsection>.*){before}"
    indices = None
    if pattern:
        found = re.search(re.compile(pattern, re.DOTALL), contents)
        if not found:
            result["msg"] = (f"Pattern for before/after params did not match the given file: {pattern}")
            result["changed"] = False
            return result
        section = found.group("subsection")
        indices = [found.start("subsection"), found.end("subsection")]
    else:
        section = contents
    try:
        new_text, count = re.subn(re.compile(str(regexp), re.MULTILINE), repl, section, count=0)
    except re.error as exc:
        c.fail(f"Unable to process replace due to error: {exc}")
    if count > 0 and section != new_text:
        if indices is not None:
            new_text = contents[:indices[0]] + new_text + contents[indices[1]:]
        msg = f"{count} replacements made"
        changed = True
        if ctx.diff_mode:
            result["diff"] = {"before_header": path, "before": contents,
                              "after_header": path, "after": new_text}
    else:
        msg, changed = "", False
    if changed and not ctx.check_mode:
        if c.boolean(args.get("backup", False)) and os.path.exists(path):
            result["backup_file"] = c.backup_local(ctx, path)
        _write(ctx, args, new_text.encode(encoding, "surrogateescape"), path)
    result["msg"], result["changed"] = _attrs(ctx, args, path, changed, msg, None)
    return result


MODULES = {"lineinfile": lineinfile, "blockinfile": blockinfile, "replace": replace}
