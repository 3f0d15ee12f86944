"""Read the artifact's own entries: ``plan.json``, ``files/<sha256>``, ``manifest.json``.

The artifact is a zip with a launcher line in front; Python runs it with ``zipimport``, which is
already loaded, so reads go through a ``zipimporter`` (no ``zipfile`` import on the hot path).
A plain directory with the same layout works too (tests, debugging).
"""

import os
import sys


class PayloadError(Exception):
    """The artifact cannot be read or is not what its manifest says (exit 3)."""


class Payload:
    """The entries of one artifact (a zip file, possibly with a prefix, or a directory)."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.is_dir = os.path.isdir(self.root)
        self._importer = None
        if not self.is_dir:
            import zipimport

            try:
                self._importer = zipimport.zipimporter(self.root)
            except zipimport.ZipImportError as exc:
                raise PayloadError(f"{self.root}: not an artifact ({exc})") from exc

    @classmethod
    def locate(cls):
        """The payload this process was started from (``python3 ARTIFACT ...``)."""
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        if path:
            root = os.path.dirname(os.path.abspath(path))
        elif sys.argv and sys.argv[0]:
            root = sys.argv[0]
        else:
            raise PayloadError("cannot tell which artifact is running (no __main__ path)")
        return cls(root)

    def read(self, name):
        """The bytes of entry ``name`` (e.g. ``plan.json``); PayloadError when missing."""
        try:
            if self._importer is not None:
                return self._importer.get_data(name)
            with open(os.path.join(self.root, *name.split("/")), "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise PayloadError(f"{self.root}: no entry '{name}' in the artifact") from exc

    def has(self, name):
        try:
            self.read(name)
        except PayloadError:
            return False
        return True

    def read_json(self, name):
        import json

        data = self.read(name)
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise PayloadError(f"{self.root}: entry '{name}' is not valid JSON: {exc}") from exc

    def names(self):
        """Every entry name (sorted); used by ``verify``."""
        if self.is_dir:
            out = []
            for dirpath, _dirs, files in os.walk(self.root):
                for f in files:
                    rel = os.path.relpath(os.path.join(dirpath, f), self.root)
                    if "__pycache__" in rel.split(os.sep) or rel.startswith(".rustle-unpacked.json"):
                        continue  # bytecode Python cached; the deploy agent's seal
                    out.append(rel.replace(os.sep, "/"))
            return sorted(out)
        import zipimport

        # The directory zipimport read when this payload was opened: listing it again through
        # zipfile would cost that module's import (~5 ms) on every run (cli.py checks entries).
        toc = getattr(zipimport, "_zip_directory_cache", {}).get(self.root)
        if isinstance(toc, dict):
            return sorted(n.replace(os.sep, "/") for n in toc if not n.endswith(os.sep))
        import zipfile

        try:
            with zipfile.ZipFile(self.root) as zf:
                return sorted(n for n in zf.namelist() if not n.endswith("/"))
        except (OSError, zipfile.BadZipFile) as exc:
            raise PayloadError(f"{self.root}: cannot list entries: {exc}") from exc

    def check_identity(self, sha256):
        """Problems of a zip artifact whose whole file must hash to ``sha256`` (its name on a
        host): one read and hash of the file, instead of one per entry."""
        from .lowlevel import new_hash

        size = os.path.getsize(self.root)
        h = new_hash("sha256", size)
        with open(self.root, "rb") as fh:
            while True:
                block = fh.read(1 << 18)
                if not block:
                    break
                h.update(block)
        actual = h.hexdigest()
        return [] if actual == sha256 else [f"the file hashes to {actual}, not {sha256}"]

    def verify(self):
        """Re-hash every entry against manifest.json; return a list of problems (empty: ok)."""
        from .lowlevel import hexdigest

        manifest = self.read_json("manifest.json")
        expected = manifest.get("entries")
        if not isinstance(expected, dict):
            return ["manifest.json: no 'entries' object"]
        problems = []
        present = set(self.names())
        for name in sorted(expected):
            if name not in present:
                problems.append(f"{name}: missing")
                continue
            try:
                data = self.read(name)
            except (PayloadError, OSError) as exc:
                problems.append(f"{name}: unreadable ({exc})")
                continue
            except Exception as exc:  # zipimport raises ZipImportError/zlib.error on corrupt data
                problems.append(f"{name}: unreadable ({type(exc).__name__}: {exc})")
                continue
            actual = hexdigest("sha256", data)
            if actual != expected[name]:
                problems.append(f"{name}: sha256 {actual}, manifest says {expected[name]}")
        for name in sorted(present - set(expected) - {"manifest.json"}):
            problems.append(f"{name}: not listed in the manifest")
        return problems
