"""Module family for archives: unarchive (tar, tar.gz/bz2/xz, zip) with tarfile and zipfile.

Standard library only; Python 3.8 syntax. The archive is either embedded in the artifact
(``src`` as written, see ``_common.embedded_source``) or already on the host
(``remote_src: true``). Members that would land outside ``dest`` (absolute paths, ``..``,
links pointing out, writes through existing symlinks) are refused before anything is
written. ``changed`` is true when some member differs from what is on disk (type, content,
link target, or mode when the archive records one), as ansible-core's unarchive reports it.
"""

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile

from . import _common as c

UNARCHIVE_ARGS = {"src", "dest", "remote_src", "copy", "creates", "list_files", "exclude",
                  "include", "keep_newer", "extra_opts", "mode", "owner", "group",
                  "validate_certs", "decrypt", "io_buffer_size", "unsafe_writes", "attributes",
                  "seuser", "serole", "setype", "selevel"}


class _Member:
    __slots__ = ("name", "kind", "mode", "linkname", "read", "mtime")

    def __init__(self, name, kind, mode, linkname, read, mtime):
        self.name, self.kind, self.mode = name, kind, mode
        self.linkname, self.read, self.mtime = linkname, read, mtime


def _tar_members(archive):
    out = []
    for info in archive.getmembers():
        if info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        elif info.isfile():
            kind = "file"
        else:
            continue  # devices and fifos are not unpacked
        reader = (lambda i=info: archive.extractfile(i).read()) if kind == "file" else None
        out.append(_Member(info.name, kind, info.mode & 0o7777, info.linkname, reader,
                           info.mtime))
    return out


def _zip_members(archive):
    out = []
    for info in archive.infolist():
        unix = info.external_attr >> 16
        if info.filename.endswith("/"):
            kind = "dir"
        elif stat.S_ISLNK(unix):
            kind = "symlink"
        else:
            kind = "file"
        mode = stat.S_IMODE(unix) if unix else None
        linkname = archive.read(info).decode("utf-8", "surrogateescape") \
            if kind == "symlink" else None
        reader = (lambda i=info: archive.read(i)) if kind == "file" else None
        import time

        mtime = time.mktime(info.date_time + (0, 0, -1))
        out.append(_Member(info.filename, kind, mode, linkname, reader, mtime))
    return out


def _safe_target(dest, name, kind, linkname):
    """The absolute path of a member under ``dest``; fails when it would escape."""
    norm = os.path.normpath(name)
    if os.path.isabs(name) or norm == ".." or norm.startswith(".." + os.sep):
        c.fail(f"path {name} is outside of the destination {dest}; refusing to unpack")
    target = os.path.join(dest, norm)
    real_dest = os.path.realpath(dest)
    parent = os.path.realpath(os.path.dirname(target))
    if parent != real_dest and not parent.startswith(real_dest + os.sep):
        c.fail(f"path {name} would be written through a symlink outside of {dest}; refusing to unpack")
    if kind in ("symlink", "hardlink") and linkname:
        base = os.path.dirname(target) if kind == "symlink" else dest
        resolved = os.path.normpath(os.path.join(base, linkname))
        if os.path.isabs(linkname) or not (resolved == os.path.normpath(dest) or resolved
                                           .startswith(os.path.normpath(dest) + os.sep)):
            c.fail(f"link {name} -> {linkname} points outside of the destination {dest}; refusing to unpack")
    return target


def _differs(member, target, keep_newer):
    if not os.path.lexists(target):
        return True
    st = os.lstat(target)
    if member.kind == "dir":
        return not stat.S_ISDIR(st.st_mode) or (
            member.mode is not None and stat.S_IMODE(st.st_mode) != member.mode)
    if member.kind == "symlink":
        return not stat.S_ISLNK(st.st_mode) or os.readlink(target) != member.linkname
    if member.kind == "hardlink":
        return False
    if not stat.S_ISREG(st.st_mode):
        return True
    if keep_newer and st.st_mtime > member.mtime:
        return False
    if member.mode is not None and stat.S_IMODE(st.st_mode) != member.mode:
        return True
    data = member.read()
    if st.st_size != len(data):
        return True
    with open(target, "rb") as handle:
        return handle.read() != data


def _matches(name, patterns):
    import fnmatch

    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name.rstrip("/"), p)
               for p in patterns)


@c.module
def unarchive(ctx, args):
    """ansible.builtin.unarchive for tar and zip archives."""
    c.check_unknown(args, UNARCHIVE_ARGS, "unarchive")
    c.refuse(args, "unarchive", {"extra_opts": [], "validate_certs": True})
    src, dest = args.get("src"), args.get("dest")
    c.require(dest=dest, src=src)
    dest = c.expand(c.expand_user_home(dest))
    remote = c.boolean(args.get("remote_src", False))
    if args.get("copy") is not None:
        remote = not c.boolean(args["copy"])
    creates = args.get("creates")
    if creates and os.path.exists(c.expand(c.expand_user_home(creates))):
        return {"changed": False, "dest": dest, "src": src,
                "msg": f"skipped, since {creates} exists", "skipped": True}
    if not os.path.isdir(dest):
        c.fail(f"dest '{dest}' must be an existing dir")
    if str(src).startswith(("http://", "https://", "ftp://")):
        c.fail("unarchive: downloading src is not supported by this runtime; hint: fetch it "
               "with get_url first, then use remote_src: true")
    tmp = None
    if remote:
        path = c.expand(src)
        if not os.path.exists(path):
            c.fail(f"Source '{path}' does not exist")
        if not os.access(path, os.R_OK):
            c.fail(f"Source '{path}' not readable")
    else:
        data = c.embedded_source(ctx, args, src)
        fd, tmp = tempfile.mkstemp(prefix=".rustle_archive_")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        path = tmp
    try:
        return _unpack(ctx, args, src, path, dest)
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _unpack(ctx, args, src, path, dest):
    include = args.get("include") or []
    exclude = args.get("exclude") or []
    if isinstance(include, str):
        include = [include]
    if isinstance(exclude, str):
        exclude = [exclude]
    keep_newer = c.boolean(args.get("keep_newer", False))
    if zipfile.is_zipfile(path):
        archive, handler = zipfile.ZipFile(path), "ZipArchive"
        members = _zip_members(archive)
    else:
        try:
            archive, handler = tarfile.open(path), "TgzArchive"
        except (tarfile.TarError, OSError) as exc:
            c.fail(f"Failed to find handler for \"{src}\". Make sure the required command to "
                   f"extract the file is installed.\n{exc}")
        members = _tar_members(archive)
    try:
        chosen = [m for m in members
                  if (not include or _matches(m.name, include))
                  and not (exclude and _matches(m.name, exclude))]
        targets = [(m, _safe_target(dest, m.name, m.kind, m.linkname)) for m in chosen]
        changed_members = [(m, t) for m, t in targets if _differs(m, t, keep_newer)]
        result = {"dest": dest, "src": src, "handler": handler,
                  "changed": bool(changed_members)}
        if c.boolean(args.get("list_files", False)):
            result["files"] = [m.name for m in chosen]
        if changed_members and not ctx.check_mode:
            for member, target in targets:
                if (member, target) not in changed_members and member.kind != "dir":
                    continue
                _write_member(member, target, dest)
            for member, target in reversed(targets):
                if member.kind == "dir" and member.mode is not None:
                    os.chmod(target, member.mode)
        attrs_changed = False
        for _member, target in targets:
            if os.path.lexists(target) and not os.path.islink(target):
                if c.apply_attributes(ctx, target, args.get("mode"), args.get("owner"),
                                      args.get("group"), attributes=args.get("attributes")):
                    attrs_changed = True
        result["changed"] = result["changed"] or attrs_changed
        return result
    finally:
        archive.close()


def _write_member(member, target, dest):
    if member.kind == "dir":
        if os.path.lexists(target) and not os.path.isdir(target):
            os.unlink(target)
        os.makedirs(target, exist_ok=True)
        return  # its mode is set after its contents are written
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    if member.kind == "symlink":
        tmp = target + ".rustle_tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(member.linkname, tmp)
        os.replace(tmp, target)
        return
    if member.kind == "hardlink":
        source = os.path.join(dest, os.path.normpath(member.linkname))
        if os.path.lexists(target):
            os.unlink(target)
        os.link(source, target)
        return
    if os.path.islink(target):
        os.unlink(target)
    c.atomic_write(target, member.read())
    if member.mode is not None:
        os.chmod(target, member.mode)
    os.utime(target, (member.mtime, member.mtime))


MODULES = {"unarchive": unarchive}
