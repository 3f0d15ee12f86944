"""Jinja2's bytecode, kept on the host (docs/remote.md, "Jinja2's bytecode on the host").

An artifact imported from its zip carries bytecode for the runtime only: Jinja2's would add
~300 KB to every artifact that embeds it, most of which never import it. Python cannot cache
the bytecode of what it imports from a zip, so a run that renders compiled Jinja2 (~100 ms of
the host's CPU) every time. Instead, the first ``import jinja2`` of a run started by the
deploy agent copies the artifact's ``jinja2/`` and ``markupsafe/`` sources, once per host, to
``<remote dir>/pyc/<sha256>/`` (0700; the sha256 is that of the artifact's Jinja2 object,
docs/remote.md, "Objects artifacts share"), imports them from there, and Python keeps their
bytecode beside them. Each later use checks every file against the zip's CRC-32 and makes the
copy again when one differs. The agent removes the copy when it removes the object
(``_prune_objects``); ``cleanup`` removes ``pyc/``. Any failure only costs the cache: Jinja2
is then imported from the zip as before.
"""

import os
import sys

PACKAGES = ("jinja2/", "markupsafe/")


def install(zip_path, state_dir):
    """Import Jinja2 through the host's copy from the first ``import jinja2`` on (nothing
    happens until then). Only for a zip run by the deploy agent (``state_dir``)."""
    if state_dir and os.path.isfile(zip_path) and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(zip_path, state_dir))


class _Finder:
    """A meta path finder that answers once, for ``jinja2`` or ``markupsafe``: it puts the
    host's copy first on ``sys.path`` and leaves the import to Python's own finders."""

    def __init__(self, zip_path, state_dir):
        self.zip_path = zip_path
        self.state_dir = state_dir

    def find_spec(self, name, path=None, target=None):
        if name not in ("jinja2", "markupsafe"):
            return None
        sys.meta_path.remove(self)
        try:
            folder = copy_for(self.zip_path, self.state_dir)
        except (OSError, ValueError, EOFError, KeyError):
            return None  # a cache: imported from the zip instead
        if folder is None:
            return None
        sys.path.insert(0, folder)
        from importlib.machinery import PathFinder

        return PathFinder.find_spec(name, [folder])


def copy_for(zip_path, state_dir):
    """``state_dir/pyc/<sha256 of the Jinja2 object>``, made or checked now; None when the
    artifact has no Jinja2 as one run of entries."""
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
        entries, key = [], None
        for prefix in PACKAGES:
            run = [k for k, info in enumerate(infos) if info.filename.startswith(prefix)]
            if not run or run != list(range(run[0], run[-1] + 1)):
                return None
            entries += [infos[k] for k in run if not infos[k].is_dir()]
            if key is None:  # the Jinja2 object's sha256 (deploy/host.py's artifact_objects)
                end = infos[run[-1] + 1].header_offset if run[-1] + 1 < len(infos) else zf.start_dir
                key = _sha256_of(zip_path, infos[run[0]].header_offset, end)
        for info in entries:
            parts = info.filename.split("/")
            if any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"unexpected entry {info.filename!r}")
        root = os.path.join(state_dir, "pyc")
        folder = os.path.join(root, key)
        if os.path.isdir(folder):
            if _intact(folder, entries):
                return folder
            _remove(folder)
        os.makedirs(root, mode=0o700, exist_ok=True)
        tmp = f"{folder}.tmp-{os.getpid()}"
        _remove(tmp)
        try:
            for info in entries:
                dest = os.path.join(tmp, *info.filename.split("/"))
                os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
                with open(dest, "wb") as out:
                    out.write(zf.read(info))
            os.rename(tmp, folder)
        except BaseException:
            _remove(tmp)
            raise
        return folder


def _sha256_of(path, start, end):
    import hashlib

    with open(path, "rb") as f:
        f.seek(start)
        return hashlib.sha256(f.read(end - start)).hexdigest()


def _intact(folder, entries):
    """Whether the copy holds exactly the zip's bytes for each entry (by CRC-32)."""
    import zlib

    for info in entries:
        try:
            with open(os.path.join(folder, *info.filename.split("/")), "rb") as f:
                if zlib.crc32(f.read()) != info.CRC:
                    return False
        except OSError:
            return False
    return True


def _remove(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
