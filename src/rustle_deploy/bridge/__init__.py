"""The module bridge: modules the runtime does not implement, run with Ansible's module protocol.

``lookup`` finds a module as Ansible would (``library/`` beside the plan, ``ANSIBLE_LIBRARY`` and
ansible.cfg's ``library``, the controller's ansible-core and its collections) and collects what
the artifact must carry: a Python module with exactly the ``module_utils`` it imports (found by
ansible-core's own AnsiballZ dependency finder, run in a child process: ``probe``), or a script
or binary module as it is. ``policy`` says which Ansible action plugins the bridge reproduces
and refuses the rest. The runtime side is ``runtime/rustle_runtime/modules/bridge.py``.

Imports: ``errors`` <- ``bridge`` <- ``plan.validate``, ``compiler``. ansible-core is never
imported into the controller's process.
"""

from __future__ import annotations

from pathlib import Path

# Where ansible-core's answers are cached between commands (``lookup``); the pipeline sets it
# from the settings (``cache_dir``/bridge). None: no cache (the library used without the CLI).
CACHE_DIR: Path | None = None
