"""The runtime imports only the standard library (and the vendored Jinja2/MarkupSafe)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime" / "rustle_runtime"
# _sha2: the built-in sha256 of Python 3.12+ (this controller may be older); crypt: standard up
# to 3.12, imported by passhash.py only when present (it computes the hashes in Python without)
ALLOWED = set(sys.stdlib_module_names) | {"jinja2", "markupsafe", "_sha2", "crypt"}


def test_every_import_is_stdlib_or_vendored():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) >= 8
    bad = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path), feature_version=(3, 8))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside rustle_runtime
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in ALLOWED:
                    bad.append(f"{path.relative_to(RUNTIME)}:{node.lineno}: {name}")
    assert not bad, "non-stdlib imports in the runtime:\n" + "\n".join(bad)

