"""Module family for files: copy, file, template, stat, slurp (Ansible's semantics and result keys).

Standard library only; Python 3.8 syntax. Every content change goes through
``_common.atomic_write``/``atomic_copy`` (temp file beside the target, os.replace).

Embedded sources: the compiled task carries ``files: {"<src as written>": "<sha256>"}``. The
ModuleContext exposes it as ``ctx.files``; ``args["_rustle_files"]`` (same shape) is accepted
too, for callers that pass it with the arguments. The bytes come from ``ctx.read_file(sha256)``.
"""

import errno
import filecmp
import os
import stat as stat_mod
import time

from . import _common as c

FILE_COMMON = ("mode", "owner", "group", "seuser", "serole", "setype", "selevel",
               "unsafe_writes", "attributes", "attr")


# ------------------------------------------------------------------------------------ helpers

def _is_text(data):
    return b"\x00" not in data[:8192]


def _prev_state(path):
    if not os.path.lexists(path):
        return "absent"
    if os.path.islink(path):
        return "link"
    if os.path.isdir(path):
        return "directory"
    if os.stat(path).st_nlink > 1:
        return "hard"
    return "file"


def _set_attrs(ctx, path, fattrs, diff=None, follow=True):
    """Ansible's set_fs_attributes_if_different with the file attributes in ``fattrs``
    (mode, owner, group, attributes)."""
    return c.apply_attributes(ctx, path, fattrs.get("mode"), fattrs.get("owner"),
                              fattrs.get("group"), diff, follow, fattrs.get("attributes"))


def _makedirs_with_mode(ctx, path, fattrs, diff=None):
    """Create the missing components of ``path``, each with the file attributes ``fattrs``."""
    missing = []
    cur = os.path.abspath(path)
    while cur and not os.path.lexists(cur):
        missing.append(cur)
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        cur = parent
    changed = False
    for item in reversed(missing):
        changed = True
        if ctx.check_mode:
            continue
        try:
            os.mkdir(item)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                c.fail(f"There was an issue creating {item} as requested: {exc}", path=path)
        _set_attrs(ctx, item, fattrs, diff)
    return changed


def _write_content(ctx, args, data, src_label, module_name):
    """Shared tail of copy (content or embedded src) and template."""
    dest = args.get("dest")
    if not dest:
        c.fail("missing required arguments: dest")
    dest = c.expand(dest)
    force = c.boolean(args.get("force", True), "force")
    backup = c.boolean(args.get("backup", False), "backup")
    follow = c.boolean(args.get("follow", False), "follow")
    mode, owner, group = args.get("mode"), args.get("owner"), args.get("group")
    validate = args.get("validate")
    checksum_src = c.checksum_bytes(data)
    expected = args.get("checksum")
    if ctx.check_mode:
        early = _check_mode_preview(ctx, dest, data, checksum_src, src_label, force, follow,
                                    not args.get("_no_diff"))
        if early is not None:
            return early
    if expected and expected != checksum_src:
        c.fail("Copied file does not match the expected checksum. Transfer failed.",
               checksum=checksum_src, expected_checksum=expected)

    changed = False
    if dest.endswith(os.sep):
        if args.get("content") is not None and module_name == "copy":
            c.fail("can not use content with a dir as dest")
        dest = os.path.join(dest, os.path.basename(src_label))
        dirname = os.path.dirname(dest)
        if not os.path.exists(dirname):
            if ctx.check_mode:
                return {"msg": f"dest directory {dirname} would be created", "changed": True,
                        "src": src_label}
            changed = _makedirs_with_mode(ctx, dirname, {"mode": args.get("directory_mode"), "owner": owner,
                                                          "group": group})
    if os.path.isdir(dest):
        if args.get("content") is not None and module_name == "copy":
            c.fail("can not use content with a dir as dest")
        dest = os.path.join(dest, os.path.basename(src_label))

    checksum_dest = None
    before = None
    if os.path.lexists(dest):
        if os.path.islink(dest) and follow:
            dest = os.path.realpath(dest)
        if not force and os.path.exists(dest):
            # Ansible's copy/template action returns quietly here (no msg)
            return {"src": src_label, "dest": dest, "changed": False}
        if os.access(dest, os.R_OK) and os.path.isfile(dest):
            with open(dest, "rb") as handle:
                before = handle.read()
            checksum_dest = c.checksum_bytes(before)
    elif not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
        c.fail(f"Destination directory {os.path.dirname(dest)} does not exist")

    result = {"dest": dest, "src": src_label, "checksum": checksum_src,
              "md5sum": c.checksum_bytes(data, "md5"), "size": len(data)}
    is_link = os.path.islink(dest)
    if checksum_src != checksum_dest or is_link:
        changed = True
        if ctx.diff_mode and not args.get("_no_diff") and _is_text(data) and (
                before is None or _is_text(before)):
            result["diff"] = [_diff(dest, before, data, src_label)]
        if not ctx.check_mode:
            unsafe = c.unsafe_writes(ctx, args)
            if not unsafe and not os.access(os.path.dirname(dest) or ".", os.W_OK):
                c.fail(f"Destination {os.path.dirname(dest)} not writable", checksum=checksum_src)
            if backup and os.path.exists(dest):
                result["backup_file"] = c.backup_local(ctx, dest)
            # a symlinked dest (follow=false) is replaced by the rename itself, atomically
            if validate:
                _validate_with_attrs(ctx, data, dest, validate, mode, owner, group)
            c.atomic_write(dest, data, mode=mode, unsafe=unsafe)
    else:  # Ansible's copy action leaves an unchanged file to the file module: it says path
        result["path"] = dest
    attr_diff = {}
    if ctx.check_mode and not os.path.exists(dest):
        changed = True
    elif c.apply_attributes(ctx, dest, mode, owner, group, attr_diff, follow=True,
                            attributes=args.get("attributes", args.get("attr"))):
        changed = True
    result["changed"] = changed
    if os.path.exists(dest):
        info = c.path_info(dest)
        info.pop("path", None)
        info.pop("size", None)
        result.update(info)
    return result


def _check_mode_preview(ctx, dest, data, checksum_src, src_label, force, follow, show_diff):
    """Ansible's copy action in check mode: a differing file is reported changed unexamined."""
    target = dest
    if target.endswith(os.sep) or os.path.isdir(target):
        target = os.path.join(target, os.path.basename(src_label))
    if os.path.islink(target) and follow:
        target = os.path.realpath(target)
    if os.path.lexists(target) and not force:
        return None
    if os.path.isfile(target) and not os.path.islink(target):
        if c.checksum_file(target) == checksum_src:
            return None
        with open(target, "rb") as handle:
            before = handle.read()
    elif os.path.isfile(target):  # a symlink to a file: Ansible diffs against its target
        with open(target, "rb") as handle:
            before = handle.read()
    else:
        before = None
    result = {"changed": True, "dest": target, "src": src_label, "checksum": checksum_src}
    if ctx.diff_mode and show_diff and _is_text(data) and (before is None or _is_text(before)):
        result["diff"] = [_diff(target, before, data, src_label)]
    return result


def _diff(dest, before, data, src_label):
    """The copy action's diff: ``before_header`` only when ``dest`` existed; ``after_header``
    the source, or ``dest`` for ``content``."""
    diff = c.file_diff(dest, before if before is not None else "", data, dest,
                       dest if src_label == "content" else src_label)
    if before is None:
        del diff["before_header"]
    return diff


def _validate_with_attrs(ctx, data, dest, validate, mode, owner, group):
    """Run ``validate`` on a temp copy carrying the requested mode, as Ansible does."""
    from ..lowlevel import mkstemp

    fd, tmp = mkstemp(os.path.dirname(os.path.abspath(dest)), ".rustle_validate_")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(tmp, c.parse_mode(mode, os.stat(tmp)))
        c.run_validate(ctx, validate, tmp, short=True)
    finally:
        os.unlink(tmp)


# ------------------------------------------------------------------------------------ copy

COPY_ARGS = {"src", "content", "dest", "mode", "owner", "group", "backup", "force",
             "directory_mode", "remote_src", "validate", "checksum", "follow", "local_follow",
             "decrypt", "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel"}


@c.module
def copy(ctx, args):
    """ansible.builtin.copy: embedded ``src``, ``content`` or ``remote_src``."""
    for internal in ("_original_basename", "_diff_peek"):  # the copy action's own check
        if args.get(internal) is not None:
            c.fail(f'Invalid parameter specified: "{internal}"')
    c.check_unknown(args, COPY_ARGS, "copy")
    src, content = args.get("src"), args.get("content")
    dest = args.get("dest")
    # the copy action's checks, in its order and words
    if not src and content is None:
        c.fail("src (or content) is required")
    if not dest:
        c.fail("dest is required")
    if src and content is not None:
        c.fail("src and content are mutually exclusive")
    if content is not None and str(dest).endswith("/"):
        c.fail("can not use content with a dir as dest")
    if c.boolean(args.get("remote_src", False), "remote_src"):
        return _copy_remote(ctx, args)  # the module expands dest: ~ is $HOME
    args = dict(args, dest=c.expand_user_home(dest))
    tree = _source_tree(ctx, src) if content is None and isinstance(src, str) else None
    if tree is not None:
        return _copy_tree(ctx, args, tree)
    if content is not None:
        if isinstance(content, (dict, list)):  # as Ansible's copy action: JSON for these,
            import json

            content = json.dumps(content)
        elif not isinstance(content, str):  # str() for the rest ("{{ r.changed }}\n": True)
            content = str(content)
        data = content.encode("utf-8", "surrogateescape")
        label = "content"
    else:
        data = c.embedded_source(ctx, args, src)
        label = src
    if args.get("mode") == "preserve":
        args = dict(args, mode=_source_mode(ctx, src) if content is None else None)
        if args["mode"] is None:  # content, or a source whose mode the compiler did not record
            ctx.warn("copy: mode=preserve keeps the default mode here: no source file's mode is known")
    result = _write_content(ctx, args, data, label, "copy")
    if (getattr(ctx, "task", None) or {}).get("assembled") and isinstance(result.get("diff"), list):
        # assemble's action plugin (compiler/assemble.py) gives its one diff, not copy's list
        result["diff"] = result["diff"][0] if result["diff"] else {}
    return result


def _source_tree(ctx, src):
    """The directory a copy ``src`` names: the one the controller read when the task's phase
    started (an earlier task on the controller may have changed it), else the compiler's. A
    host-rendered ``dir/`` whose candidate the compiler embedded as ``dir`` copies its contents
    (the compiler embeds each directory it may name once, as the directory itself)."""
    late = getattr(ctx, "late_trees", None) or {}
    compiled = (getattr(ctx, "task", None) or {}).get("trees") or {}
    tree = late.get(src) or compiled.get(src)
    if tree is not None or not src.endswith("/") or not src.rstrip("/"):
        return tree
    whole = compiled.get(src.rstrip("/"))
    if whole is None:
        return None
    top = os.path.basename(os.path.normpath(str(whole.get("path") or "")))
    strip = len(top) + 1

    def inside(mapping):
        return {rel[strip:]: v for rel, v in (mapping or {}).items() if rel.startswith(top + "/")}

    return {"path": str(whole["path"]).rstrip("/") + "/", "entries": inside(whole.get("entries")),
            "links": inside(whole.get("links")), "modes": inside(whole.get("modes"))}


def _source_mode(ctx, src):
    """The mode of the controller file a copy ``src`` names (its ``sources`` entry, recorded
    for mode=preserve: compiler/sources.py; a file sent when the task ran: its details)."""
    from ..templating import embedded

    scope = ctx.vars if hasattr(ctx.vars, "raw") else None
    info = (embedded(scope, "sources").get(src) if scope is not None else None) \
        or (getattr(ctx, "late_sources", None) or {}).get(src) or {}
    return info.get("mode")


def _copy_tree(ctx, args, tree):
    """A directory ``src`` the compiler embedded as a tree (compiler/sources.py), as Ansible's
    copy action does it: each file copied under ``dest/`` (its directories created on the way),
    then each directory ensured; one file's result when the tree holds one file."""
    dest = c.expand(args.get("dest") or "")
    if not dest.endswith(os.sep):
        dest += os.sep
    owner, group = args.get("owner"), args.get("group")
    dir_attrs = {"mode": args.get("directory_mode"), "owner": owner, "group": group}
    changed = False
    last = None
    files = [(rel, sha) for rel, sha in tree["entries"].items() if sha is not None]
    for rel, sha in files:
        target = os.path.join(dest, rel)
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            if ctx.check_mode:
                changed = True
                last = {"changed": True, "dest": target}
                continue
            changed = _makedirs_with_mode(ctx, parent, dir_attrs) or changed
        file_args = dict(args, dest=target)
        if args.get("mode") == "preserve":  # each file its source's mode, as the copy action
            file_args["mode"] = (tree.get("modes") or {}).get(rel)
        last = _write_content(ctx, file_args, ctx.read_file(sha), os.path.basename(rel), "copy")
        changed = changed or bool(last.get("changed"))
    # with one file, Ansible's copy action answers with the last module it ran: the file's
    # copy, or the file module of the last directory (or link) it ensured after it
    last_other = None
    # the copy action ensures the directories its walk lists under the src, not the src itself
    # (made on the way by its files' copies; none when it holds nothing)
    path = str(tree.get("path") or "")
    top = None if path.endswith("/") else os.path.basename(os.path.normpath(path))
    for rel, sha in tree["entries"].items():
        if sha is None and rel != top:
            path = os.path.join(dest, rel)
            made = False
            if not os.path.isdir(path):
                made = True
                if not ctx.check_mode:
                    _makedirs_with_mode(ctx, path, dir_attrs)
            elif c.apply_attributes(ctx, path, args.get("directory_mode"), owner, group):
                made = True
            changed = changed or made
            last_other = {"changed": made, "path": path, "dest": path, "state": "directory"}
    for rel, target in (tree.get("links") or {}).items():
        path = os.path.join(dest, rel)
        placed = not (os.path.islink(path) and os.readlink(path) == target)
        if placed and not ctx.check_mode:
            _place_link(os.symlink, target, path, _prev_state(path))
        changed = changed or placed
        last_other = {"changed": placed, "path": path, "dest": path, "state": "link", "src": target}
    if len(files) == 1 and last is not None:
        return last_other if last_other is not None else last
    return {"dest": dest, "src": tree["path"], "changed": changed}


def _copy_remote(ctx, args):
    src = c.expand(args["src"])
    if not os.path.exists(src):
        c.fail(f"Source {src} not found")
    if not os.access(src, os.R_OK):
        c.fail(f"Source {src} not readable")
    if os.path.isdir(src):
        return _copy_remote_dir(ctx, args, src)
    if not os.path.isfile(src):
        c.fail(f"Cannot copy invalid source '{src}': not a file")
    args = dict(args)
    if args.get("mode") == "preserve":
        args["mode"] = f"0{stat_mod.S_IMODE(os.stat(src).st_mode):03o}"
    args["_no_diff"] = True  # Ansible's copy shows no diff for remote_src
    with open(src, "rb") as handle:
        data = handle.read()
    return _write_content(ctx, args, data, src, "copy")


def _copy_remote_dir(ctx, args, src):
    """A directory ``src`` on the host (``remote_src``), as ansible-core's copy module copies
    one (its copy_directory, copy_diff_files, copy_left_only, copy_common_dirs): a new ``dest``
    is a copytree; into an existing one, the files that differ, then those only ``src`` has,
    then the directories both have, recursively. ``local_follow`` as the module reads it:
    true copies what a link points to, false copies links as links, unset (the module's
    default: the action plugin does not pass it with ``remote_src``) keeps links in a copied
    tree and skips a link standing alone beside files that both sides have. Owner and group
    are set on every entry; the mode on ``dest`` alone."""
    import shutil

    dest = c.expand(args.get("dest") or "")
    if not dest:
        c.fail("missing required arguments: dest")
    follow = args.get("local_follow")
    follow = None if follow is None else c.boolean(follow, "local_follow")
    owner, group = args.get("owner"), args.get("group")
    mode = args.get("mode")
    if mode == "preserve":
        mode = f"0{stat_mod.S_IMODE(os.stat(src).st_mode):03o}"
    reported = os.path.join(dest, os.path.basename(src)) if os.path.isdir(dest) else dest
    if os.path.exists(reported) and not c.boolean(args.get("force", True), "force"):
        return {"msg": "file already exists", "src": src, "dest": reported, "changed": False}
    named = src
    target = dest if src.endswith(os.sep) else os.path.join(dest, os.path.basename(src))
    src = os.path.join(src, "")
    check = ctx.check_mode

    def chown(path):
        return c.apply_attributes(ctx, path, None, owner, group, follow=False)

    def chown_tree(top):
        changed = False
        for root, dirs, files in os.walk(top):
            changed |= chown(root)
            for name in dirs + files:
                changed |= chown(os.path.join(root, name))
        return changed

    def diff_files(s, d):
        names = filecmp.dircmp(s, d).diff_files
        if not check:
            for name in names:
                si, di = os.path.join(s, name), os.path.join(d, name)
                if os.path.islink(si) and follow is False:
                    os.symlink(os.readlink(si), di)
                else:
                    shutil.copyfile(si, di)
                    shutil.copymode(si, di)
                chown(di)
        return bool(names)

    def left_only(s, d):
        names = filecmp.dircmp(s, d).left_only
        if not check:
            for name in names:
                si, di = os.path.join(s, name), os.path.join(d, name)
                link, is_dir, is_file = os.path.islink(si), os.path.isdir(si), os.path.isfile(si)
                if link and follow is False and (is_dir or is_file):
                    os.symlink(os.readlink(si), di)
                elif link and follow and is_dir:
                    shutil.copytree(si, di, symlinks=False)
                    chown_tree(di)
                elif link and follow and is_file:
                    shutil.copyfile(si, di)
                    chown(di)
                elif not link and is_file:
                    shutil.copyfile(si, di)
                    shutil.copymode(si, di)
                    chown(di)
                elif not link and is_dir:
                    shutil.copytree(si, di, symlinks=not follow)
                    chown_tree(di)
        return bool(names)

    def common_dirs(s, d):
        changed = False
        for name in filecmp.dircmp(s, d).common_dirs:
            si, di = os.path.join(s, name), os.path.join(d, name)
            changed |= diff_files(si, di)
            changed |= left_only(si, di)
            changed = common_dirs(si, di) or changed
        return changed

    if not os.path.exists(target):
        if not check:
            shutil.copytree(src, target, symlinks=not follow)
            chown_tree(target)
        changed = True
    else:
        changed = any([diff_files(src, target), left_only(src, target), common_dirs(src, target),
                       chown_tree(target)])
    if c.apply_attributes(ctx, reported, mode, owner, group):
        changed = True
    return {"dest": reported, "src": named, "changed": changed}


# ------------------------------------------------------------------------------------ template

TEMPLATE_ARGS = {"src", "dest", "mode", "owner", "group", "backup", "force", "newline_sequence",
                 "validate", "follow", "trim_blocks", "lstrip_blocks", "block_start_string",
                 "block_end_string", "variable_start_string", "variable_end_string",
                 "comment_start_string", "comment_end_string", "output_encoding",
                 "unsafe_writes", "attributes", "seuser", "serole", "setype", "selevel"}


def _place_link(make, src, path, prev):
    """Create ``path`` as a link to ``src`` with ``make`` (os.symlink or os.link); an existing
    path is replaced through a temporary link and a rename, so it is never missing."""
    if prev == "absent":
        try:
            make(src, path)
        except OSError as exc:
            c.fail(f"Error while linking: {exc}", path=path)
        return
    tmp = os.path.join(os.path.dirname(path), f".{os.getpid()}.{time.time()}.tmp")
    try:
        if prev == "directory" and os.path.exists(path):
            os.rmdir(path)
        make(src, tmp)
        os.rename(tmp, path)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        c.fail(f"Error while replacing: {exc}", path=path)


@c.module
def template(ctx, args):
    """ansible.builtin.template: render an embedded ``src`` with ctx.render, then copy it."""
    c.check_unknown(args, TEMPLATE_ARGS, "template")
    from ..lookups import template_file_vars
    from ..templating import TemplateError, embedded, template_overrides

    for key in ("src", "dest"):
        if args.get(key) is not None and not isinstance(args[key], str):
            c.fail(f"{key} is expected to be a string, but got {type(args[key])} instead")
    src = args.get("src")
    if src is None or args.get("dest") is None:
        c.fail("src and dest are required")
    try:
        overrides = template_overrides(args)
    except TemplateError as exc:
        c.fail(str(exc))
    source = c.embedded_source(ctx, args, src).decode("utf-8", "surrogateescape")

    scope = ctx.vars if hasattr(ctx.vars, "raw") else None  # a VarScope (tests pass a dict)
    info = embedded(scope, "sources").get(src) or {} if scope is not None else {}
    info = info or (getattr(ctx, "late_sources", None) or {}).get(src) or {}
    extra = template_file_vars(src, info, args["dest"], scope)
    rendered = ctx.render(source, extra, overrides)
    encoding = args.get("output_encoding") or "utf-8"
    data = rendered.encode(encoding, "surrogateescape")
    args = dict(args, dest=c.expand_user_home(args["dest"]))
    if args.get("mode") == "preserve":
        args["mode"] = info.get("mode")
    return _write_content(ctx, args, data, src, "template")


# ------------------------------------------------------------------------------------ file

FILE_ARGS = {"path", "dest", "name", "state", "src", "recurse", "force", "follow", "mode",
             "owner", "group", "access_time", "modification_time", "access_time_format",
             "modification_time_format", "unsafe_writes", "attributes", "seuser", "serole",
             "setype", "selevel", "_original_basename", "_diff_peek"}


def _timestamp(value, fmt):
    if value in (None, "preserve"):
        return None
    if value == "now":
        return "now"
    try:
        return time.mktime(time.strptime(value, fmt))
    except ValueError as exc:
        c.fail(f"Error while obtaining timestamp for time {value} using format {fmt}: {exc}")


def _update_times(ctx, path, mtime, atime, diff, follow=True):
    if mtime is None and atime is None:
        return False
    st = os.stat(path) if follow else os.lstat(path)
    now = time.time()
    new_m = st.st_mtime if mtime is None else (now if mtime == "now" else mtime)
    new_a = st.st_atime if atime is None else (now if atime == "now" else atime)
    if new_m == st.st_mtime and new_a == st.st_atime:
        return False
    if diff is not None:
        if new_m != st.st_mtime:
            c._diff_set(diff, "mtime", st.st_mtime, new_m)
        if new_a != st.st_atime:
            c._diff_set(diff, "atime", st.st_atime, new_a)
    if not ctx.check_mode:
        try:
            os.utime(path, (new_a, new_m), follow_symlinks=follow)
        except OSError as exc:
            c.fail(f"Error while updating modification or access time: {exc}", path=path)
    return True


def _initial_diff(path, state, prev_state):
    diff = {"before": {"path": path}, "after": {"path": path}}
    if prev_state != state:
        diff["before"]["state"] = prev_state
        diff["after"]["state"] = state
        if state == "absent" and prev_state == "directory":
            walked = []
            for base, dirs, files in os.walk(path):
                walked.extend(os.path.join(base, n) for n in dirs + files)
            diff["before"]["path_content"] = {"directories": [], "files": []}
            for item in walked:
                key = "directories" if os.path.isdir(item) else "files"
                diff["before"]["path_content"][key].append(item)
    return diff


@c.module
def file(ctx, args):
    """ansible.builtin.file: file, directory, link, hard, touch, absent."""
    c.check_unknown(args, FILE_ARGS, "file")
    path = c.pop_arg(args, ("path", "dest", "name"))
    if path is None:
        c.fail("missing required arguments: path")
    path = c.expand(path)
    state = args.get("state")
    src = args.get("src")
    src = None if src is None else c.expand(src)  # type=path, as Ansible's argument spec
    recurse = c.boolean(args.get("recurse", False), "recurse")
    force = c.boolean(args.get("force", False), "force")
    follow = c.boolean(args.get("follow", True), "follow")
    mode, owner, group = args.get("mode"), args.get("owner"), args.get("group")
    attributes = c.pop_arg(args, ("attributes", "attr"))
    if state is not None and state not in ("file", "directory", "link", "hard", "touch", "absent"):
        c.fail("value of state must be one of: absent, directory, file, hard, link, touch, "
               f"got: {state}")
    # Ansible's additional_parameter_handling: an existing directory path names the file
    # inside it (except for link and absent), the state defaults to the current one
    if state not in ("link", "absent") and os.path.isdir(path):
        basename = args.get("_original_basename") or (os.path.basename(src) if src else None)
        if basename:
            path = os.path.join(path, basename)
    prev = _prev_state(path)
    if state is None:
        if prev != "absent":
            state = prev
        elif recurse:
            state = "directory"
        else:
            state = "file"
    if recurse and state != "directory":
        c.fail("recurse option requires state to be 'directory'", path=path)
    if src and state not in ("link", "hard"):
        c.fail("src option requires state to be 'link' or 'hard'", path=path)
    if ctx.check_mode and state != "absent":
        _warn_unknown_owner(ctx, owner, group)
    mtime_raw, atime_raw = args.get("modification_time"), args.get("access_time")
    if state == "touch":  # touch sets both times to now unless told to preserve them
        mtime_raw, atime_raw = mtime_raw or "now", atime_raw or "now"
    times = {
        "mtime": _timestamp(mtime_raw, args.get("modification_time_format", "%Y%m%d%H%M.%S")),
        "atime": _timestamp(atime_raw, args.get("access_time_format", "%Y%m%d%H%M.%S")),
    }
    handler = {"file": _ensure_file, "directory": _ensure_directory, "link": _ensure_link,
               "hard": _ensure_hard, "touch": _ensure_touch, "absent": _ensure_absent}[state]
    fattrs = {"mode": mode, "owner": owner, "group": group, "attributes": attributes}
    result = handler(ctx, path, prev, src, fattrs, recurse, force, follow, times)
    if not ctx.diff_mode:
        result.pop("diff", None)
    where = result.get("path") or result.get("dest") or path
    if state != "absent" and os.path.exists(where):  # Ansible's add_path_info follows links
        info = c.path_info(where, follow=False)
        info.pop("path", None)
        result.update(info)
    elif state == "absent":
        result["state"] = "absent"
    return result


def _warn_unknown_owner(ctx, owner, group):
    """Ansible's check-mode warnings for an owner or group that does not exist (yet)."""
    import grp
    import pwd

    for value, what, by_id, by_name, id_word in (
            (owner, "user", pwd.getpwuid, pwd.getpwnam, "uid"),
            (group, "group", grp.getgrgid, grp.getgrnam, "gid")):
        if not value:
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            try:
                by_name(str(value))
            except KeyError:
                ctx.warn(f"failed to look up {what} {value}. Create {what} up to this point in "
                         "real play")
            continue
        try:
            by_id(number)
        except KeyError:
            ctx.warn(f"failed to look up {what} with {id_word} {number}. Create {what} up to "
                     "this point in real play")


def _ensure_absent(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    result = {"path": path, "changed": False}
    if prev == "absent":
        return result
    result["diff"] = _initial_diff(path, "absent", prev)
    result["changed"] = True
    if not ctx.check_mode:
        if prev == "directory":
            import shutil

            try:
                shutil.rmtree(path)
            except OSError as exc:
                c.fail(f"rmtree failed: {exc}")
        else:
            try:
                os.unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    c.fail("Unlinking failed.", path=path)
    return result


def _ensure_file(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    diff = _initial_diff(path, "file", prev)
    if prev not in ("file", "hard"):
        if follow and prev == "link":
            target = os.path.realpath(path)
            prev = _prev_state(target)
            path = target
        if prev not in ("file", "hard"):
            c.fail(f"file ({path}) is {prev}, cannot continue", path=path, state=prev)
    changed = _set_attrs(ctx, path, fattrs, diff)
    changed |= _update_times(ctx, path, times["mtime"], times["atime"], diff)
    return {"path": path, "changed": changed, "diff": diff}


def _ensure_directory(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    if follow and prev == "link":
        path = os.path.realpath(path)
        prev = _prev_state(path)
    diff = _initial_diff(path, "directory", prev)
    changed = False
    if prev == "absent":
        if ctx.check_mode:
            return {"path": path, "changed": True, "diff": diff}
        changed = _makedirs_with_mode(ctx, path, fattrs, diff=diff)
        _update_times(ctx, path, times["mtime"], times["atime"], diff)
        if recurse:
            changed |= _recurse(ctx, path, fattrs, follow, times)
        return {"path": path, "changed": changed, "diff": diff}
    if prev != "directory":
        c.fail(f"{path} already exists as a {prev}", path=path)
    changed = _set_attrs(ctx, path, fattrs, diff)
    changed |= _update_times(ctx, path, times["mtime"], times["atime"], diff)
    if recurse:
        changed |= _recurse(ctx, path, fattrs, follow, times)
    return {"path": path, "changed": changed, "diff": diff}


def _recurse(ctx, path, fattrs, follow, times):
    """Ansible's recursive_set_attributes: every entry below ``path``, a symlink itself and,
    with ``follow``, its existing target (a directory target recursively)."""
    changed = False
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            item = os.path.join(root, name)
            changed |= _set_attrs(ctx, item, fattrs, None, follow=not os.path.islink(item))
            changed |= _update_times(ctx, item, times["mtime"], times["atime"], None,
                                     follow=not os.path.islink(item))
            if follow and os.path.islink(item):
                target = os.path.join(root, os.readlink(item))
                if os.path.exists(target):
                    if os.path.isdir(target):
                        changed |= _recurse(ctx, target, fattrs, follow, times)
                    changed |= _set_attrs(ctx, target, fattrs)
                    changed |= _update_times(ctx, target, times["mtime"], times["atime"], None)
    return changed


def _ensure_link(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    if src is None and follow and os.path.lexists(path) and os.path.islink(path):
        src = os.readlink(path)
    if not os.path.islink(path) and os.path.isdir(path):
        relpath = path
    else:
        relpath = os.path.dirname(path)
    absrc = None if src is None else os.path.join(relpath, src)
    if not force and src is not None and not os.path.exists(absrc):
        c.fail("src file does not exist, use 'force=yes' if you really want to create the "
               f"link: {absrc}", path=path, src=src)
    if prev == "directory":
        if not force:
            c.fail(f"refusing to convert from {prev} to symlink for {path}", path=path)
        if os.listdir(path):
            c.fail(f"the directory {path} is not empty, refusing to convert it", path=path)
    elif prev in ("file", "hard") and not force:
        c.fail(f"refusing to convert from {prev} to symlink for {path}", path=path)
    diff = _initial_diff(path, "link", prev)
    changed = False
    if prev in ("hard", "file", "directory", "absent"):
        if src is None:
            c.fail("src is required for creating new symlinks")
        changed = True
    elif prev == "link" and src is not None:
        old = os.readlink(path)
        if old != src:
            diff["before"]["src"] = old
            diff["after"]["src"] = src
            changed = True
    if changed and not ctx.check_mode:
        _place_link(os.symlink, src, path, prev)
    if ctx.check_mode and not os.path.lexists(path):
        return {"dest": path, "src": src, "changed": changed, "diff": diff}
    if follow and os.path.islink(path) and not os.path.exists(path):
        # Ansible warns whether or not attributes were asked for
        ctx.warn("Cannot set fs attributes on a non-existent symlink target. follow should"
                 " be set to False to avoid this.")
    elif os.path.lexists(path):
        changed |= _set_attrs(ctx, path, fattrs, diff, follow=follow)
        changed |= _update_times(ctx, path, times["mtime"], times["atime"], diff, follow=follow)
    return {"dest": path, "src": src, "changed": changed, "diff": diff}


def _ensure_hard(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    # as Ansible's ensure_hardlink: a relative src names a path from the working directory
    if prev != "hard" and src is None:
        c.fail("src is required for creating new hardlinks")
    if src is not None and not os.path.exists(src):
        c.fail("src does not exist", dest=path, src=src)
    diff = _initial_diff(path, "hard", prev)
    changed = False
    if prev == "absent":
        changed = True
    elif prev == "link":
        old = os.readlink(path)
        if old != src:
            diff["before"]["src"] = old
            diff["after"]["src"] = src
            changed = True
    elif prev == "hard":
        if src is not None and os.stat(path).st_ino != os.stat(src).st_ino:
            changed = True
            if not force:
                c.fail("Cannot link, different hard link exists at destination", dest=path,
                       src=src)
    elif prev == "file":
        changed = True
        if not force:
            c.fail(f"Cannot link, {prev} exists at destination", dest=path, src=src)
    elif prev == "directory":
        changed = True
        if os.path.exists(path):
            if os.stat(path).st_ino == os.stat(src).st_ino:
                return {"path": path, "changed": False}
            if not force:
                c.fail("Cannot link: different hard link exists at destination", dest=path,
                       src=src)
    if changed and not ctx.check_mode:
        if prev == "absent" and follow and os.path.islink(src):
            _place_link(os.link, os.readlink(src), path, prev)
        else:
            _place_link(os.link, src, path, prev)
    if ctx.check_mode and not os.path.exists(path):
        return {"dest": path, "src": src, "changed": changed, "diff": diff}
    changed |= _set_attrs(ctx, path, fattrs, diff)
    changed |= _update_times(ctx, path, times["mtime"], times["atime"], diff)
    return {"dest": path, "src": src, "changed": changed, "diff": diff}


def _ensure_touch(ctx, path, prev, src, fattrs, recurse, force, follow, times):
    diff = _initial_diff(path, "touch", prev)
    changed = False
    if prev == "absent":
        changed = True
        if not ctx.check_mode:
            try:
                open(path, "wb").close()
            except OSError as exc:
                c.fail(f"Error, could not touch target: {exc}", path=path)
    elif prev not in ("file", "directory", "hard", "link"):
        c.fail(f"Cannot touch other than files, directories, and hardlinks ({path} is {prev})")
    if ctx.check_mode and not os.path.lexists(path):
        return {"dest": path, "changed": True, "diff": diff}
    changed |= _set_attrs(ctx, path, fattrs, diff, follow=follow)
    changed |= _update_times(ctx, path, times["mtime"], times["atime"], diff, follow=follow)
    return {"dest": path, "changed": changed, "diff": diff}


# ------------------------------------------------------------------------------------ stat

STAT_ARGS = {"path", "dest", "name", "follow", "get_checksum", "checksum_algorithm",
             "checksum", "checksum_algo", "get_mime", "mime", "mime_type", "mime-type",
             "get_attributes", "attr", "attributes"}


@c.module
def stat(ctx, args):
    """ansible.builtin.stat: ``{"changed": false, "stat": {...}}`` with Ansible's keys."""
    c.check_unknown(args, STAT_ARGS, "stat")
    path = c.pop_arg(args, ("path", "dest", "name"))
    if path is None:
        c.fail("missing required arguments: path")
    path = c.expand(path)
    follow = c.boolean(args.get("follow", False), "follow")
    get_checksum = c.boolean(args.get("get_checksum", True), "get_checksum")
    algorithm = c.pop_arg(args, ("checksum_algorithm", "checksum", "checksum_algo"), "sha1")
    if algorithm not in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
        c.fail("value of checksum_algorithm must be one of: md5, sha1, sha224, sha256, "
               f"sha384, sha512, got: {algorithm}")
    get_mime = c.boolean(c.pop_arg(args, ("get_mime", "mime", "mime_type", "mime-type"), True))
    get_attr = c.boolean(c.pop_arg(args, ("get_attributes", "attr", "attributes"), True))
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return {"changed": False, "stat": {"exists": False}}
        c.fail(str(exc))
    mode = st.st_mode
    out = {
        "exists": True, "path": path, "mode": f"{stat_mod.S_IMODE(mode):04o}",
        "isdir": stat_mod.S_ISDIR(mode), "ischr": stat_mod.S_ISCHR(mode),
        "isblk": stat_mod.S_ISBLK(mode), "isreg": stat_mod.S_ISREG(mode),
        "isfifo": stat_mod.S_ISFIFO(mode), "islnk": stat_mod.S_ISLNK(mode),
        "issock": stat_mod.S_ISSOCK(mode), "uid": st.st_uid, "gid": st.st_gid,
        "size": st.st_size, "inode": st.st_ino, "dev": st.st_dev, "nlink": st.st_nlink,
        "atime": st.st_atime, "mtime": st.st_mtime, "ctime": st.st_ctime,
        "wusr": bool(mode & stat_mod.S_IWUSR), "rusr": bool(mode & stat_mod.S_IRUSR),
        "xusr": bool(mode & stat_mod.S_IXUSR), "wgrp": bool(mode & stat_mod.S_IWGRP),
        "rgrp": bool(mode & stat_mod.S_IRGRP), "xgrp": bool(mode & stat_mod.S_IXGRP),
        "woth": bool(mode & stat_mod.S_IWOTH), "roth": bool(mode & stat_mod.S_IROTH),
        "xoth": bool(mode & stat_mod.S_IXOTH), "isuid": bool(mode & stat_mod.S_ISUID),
        "isgid": bool(mode & stat_mod.S_ISGID),
        "pw_name": c.user_name(st.st_uid), "gr_name": c.group_name(st.st_gid),
        "blocks": st.st_blocks, "block_size": st.st_blksize,
        "device_type": st.st_rdev,
        "readable": os.access(path, os.R_OK), "writeable": os.access(path, os.W_OK),
        "executable": os.access(path, os.X_OK),
    }
    if stat_mod.S_ISLNK(mode):
        out["lnk_source"] = os.path.realpath(path)
        out["lnk_target"] = os.readlink(path)
    if stat_mod.S_ISREG(mode) and get_checksum and os.access(path, os.R_OK):
        out["checksum"] = c.checksum_file(path, algorithm)
    if get_mime:
        out["mimetype"] = out["charset"] = "unknown"
        rc, mout, _ = _file_mime(ctx, path)
        if rc == 0 and mout:
            try:
                mimetype, charset = mout.rsplit(":", 1)[1].split(";")
                out["mimetype"] = mimetype.strip()
                out["charset"] = charset.split("=")[1].strip()
            except (IndexError, ValueError):
                pass
    if get_attr:
        out.update({"version": None, "attributes": [], "attr_flags": ""})
        out.update(c.file_attributes(ctx, path))
    return {"changed": False, "stat": out}


# ------------------------------------------------------------------------------------ slurp

@c.module
def slurp(ctx, args):
    """ansible.builtin.slurp: a file's bytes, base64-encoded, as ``content`` (works in check mode)."""
    import base64

    c.check_unknown(args, {"src", "path"}, "slurp")
    src = c.pop_arg(args, ("src", "path"))
    if src is None:
        c.fail("missing required arguments: src")
    src = c.expand(src)
    try:
        with open(src, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            c.fail(f"File not found: {src}")
        elif exc.errno == errno.EACCES:
            c.fail(f"File is not readable: {src}")
        elif exc.errno == errno.EISDIR:
            c.fail(f"Source is a directory and must be a file: {src}")
        # ansible-core 2.19's message, whose missing f leaves the placeholder as written
        c.fail("Unable to slurp file: {source}")
    return {"changed": False, "content": base64.b64encode(data).decode("ascii"), "source": src,
            "encoding": "base64"}


def _file_mime(ctx, path):
    from ..lowlevel import which

    tool = which("file")
    if tool is None:
        return 1, "", ""
    rc, out, err = ctx.run_command([tool, "--mime-type", "--mime-encoding", path], expand=False)
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    return rc, out, err


def _truthy(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y", "t")


def fetch(ctx, args):
    """ansible-core's fetch action, from the host's side: the file is read here and its bytes go
    back to the controller (the executor's ``fetched`` event, outside the journal), which writes
    them where the compiler decided (``task["fetch"][host]``: the controller path and the
    checksum of what is there now), only when they differ."""
    import base64
    import hashlib

    if ctx.check_mode:
        return {"changed": False, "skipped": True, "msg": "check mode not (yet) supported for this module",
                "_action_skip": True}
    src, dest = args.get("src"), args.get("dest")
    msg = ""
    if not isinstance(src, str):
        msg = "Invalid type supplied for source option, it must be a string"
    if not isinstance(dest, str):
        msg = "Invalid type supplied for dest option, it must be a string"
    if src is None or dest is None:
        msg = "src and dest are required"
    if msg:
        return {"changed": False, "failed": True, "msg": msg}
    fail_on_missing = _truthy(args.get("fail_on_missing"), True)
    target = (ctx.task.get("fetch") or {}).get(ctx.host)
    if not isinstance(target, dict):
        c.fail(f"fetch: the artifact says nowhere on the controller for host {ctx.host}")
    source = os.path.expanduser(src)
    if os.path.isdir(source):
        if fail_on_missing:
            return {"changed": False, "failed": True,
                    "msg": "remote file is a directory, fetch cannot work on directories"}
        return {"msg": "remote file is a directory, fetch cannot work on directories, not transferring, ignored"}
    try:
        with open(source, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        missing = exc.errno == errno.ENOENT
        text = "the remote file does not exist, not transferring, ignored" if missing else \
            f"file is not readable: {source}"
        if fail_on_missing:
            return {"changed": False, "failed": True, "msg": text}
        return {"changed": False, "file": source, "msg": text}
    if target.get("error"):
        return {"changed": False, "failed": True, "msg": target["error"]}
    remote = hashlib.sha1(data).hexdigest()  # noqa: S324 (Ansible's checksum)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324
    if remote == target.get("checksum"):
        return {"changed": False, "md5sum": md5, "file": source, "dest": target["dest"], "checksum": remote}
    return {"changed": True, "md5sum": md5, "dest": target["dest"], "remote_md5sum": None, "checksum": remote,
            "remote_checksum": remote,
            "_rustle_fetch": {"data": base64.b64encode(data).decode("ascii"), "checksum": remote,
                              "validate": _truthy(args.get("validate_checksum"), True)}}


MODULES = {"copy": copy, "file": file, "template": template, "stat": stat, "slurp": slurp, "fetch": fetch}
