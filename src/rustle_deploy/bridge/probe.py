"""Ask the controller's ansible-core how it would resolve modules; run in a child process.

``lookup.py`` starts this file with the controller's Python (``python probe.py``), writes a JSON
request on its stdin and reads one JSON answer from its stdout. It runs apart because
ansible-core keeps global state: its configuration (``ansible.cfg``, ``ANSIBLE_*``) is read
once at import, its plugin loaders remember every directory added, and its collection finder
installs itself in ``sys.meta_path``. A child process sees the configuration of this command,
as a fresh ``ansible-playbook`` would, and leaves the controller untouched.

Request: ``{"op": "resolve", "lookups": {KEY: [NAME, [COLLECTION, ...]], ...}, "plan_dirs": [DIR, ...]}``
(the collections a play's or role's ``collections:`` keyword searches for a short NAME, empty
without it) or ``{"op": "list", "plan_dirs": [...]}``. Answer: see ``resolve`` and ``list_modules``.
Nothing here is imported by the controller.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import os
import sys
import zipfile
from typing import Any

from rustle_deploy.bridge.ansible_start import plugin_loader

_EPOCH = datetime.datetime(1980, 1, 1, tzinfo=datetime.UTC)


def _style(data: bytes) -> str:
    """Ansible's module style (executor/module_common.py ``_find_module_utils``)."""
    from ansible.executor import module_common as mc

    if mc._is_binary(data):
        return "binary"
    if mc.REPLACER in data or mc.NEW_STYLE_PYTHON_MODULE_RE.search(data):
        return "new"
    if mc.REPLACER_WINDOWS in data or b"#Requires -Module" in data or b"#AnsibleRequires -" in data:
        return "powershell"
    if mc.REPLACER_JSONARGS in data:
        return "jsonargs"
    if b"WANT_JSON" in data:
        return "want_json"
    return "old"


def _share_parsed_module_utils(mc: Any) -> None:
    """Parse each module_utils file once for all the modules of one request: AnsiballZ's finder
    parses every file a module imports for each module (basic and its ~100 files again for each),
    which was most of a probe's time. Same trees, so the same files are found."""
    if getattr(mc, "_rustle_shared", False):
        return
    parse = mc._compile_module_ast
    trees: dict[tuple[str, str], Any] = {}

    def cached(module_name: str, source_code: str | bytes) -> Any:
        raw = source_code.encode("utf-8", "surrogateescape") if isinstance(source_code, str) else bytes(source_code)
        key = (module_name, hashlib.sha256(raw).hexdigest())
        if key not in trees:
            trees[key] = parse(module_name, source_code)
        return trees[key]

    mc._compile_module_ast = cached
    mc._rustle_shared = True


def _payload(name: str, path: str, data: bytes) -> dict[str, Any]:
    """The module and every module_utils file it imports, as AnsiballZ would zip them."""
    from ansible._internal._ansiballz import _builder
    from ansible._internal._datatag._tags import Origin
    from ansible.executor import module_common as mc

    _share_parsed_module_utils(mc)
    data = data.replace(mc.REPLACER, b"from ansible.module_utils.basic import *")
    try:
        fqn = mc._get_ansible_module_fqn(path)
    except ValueError:  # library/ and role modules: AnsiballZ names them so too
        fqn = "ansible.legacy." + name.rsplit(".", 1)[-1]
    buf = io.BytesIO()
    manager = _builder.ExtensionManager()
    with zipfile.ZipFile(buf, "w") as zf:
        metadata = mc.recursive_finder(name, fqn, Origin(path=path).tag(data), zf, _EPOCH, manager)
        mc._add_module_to_zip(zf, _EPOCH, fqn, data, path, manager)
        files = {n: base64.b64encode(zf.read(n)).decode() for n in zf.namelist()}
    return {"module_fqn": fqn, "profile": metadata.serialization_profile, "files": files}


def _interpreter(data: bytes) -> list[str]:
    from ansible.executor import module_common as mc

    interpreter, args = mc._extract_interpreter(data)
    return [interpreter, *args] if interpreter else []


def resolve(lookups: dict[str, list[Any]]) -> dict[str, Any]:
    """key -> ``{"found": False, "reason", "tried"}`` or what the compiler embeds, for each
    ``key: [name, collections]``."""
    from ansible.plugins.loader import action_loader, module_loader

    out: dict[str, Any] = {}
    for key, (name, collections) in lookups.items():
        ctx = module_loader.find_plugin_with_context(name, collection_list=collections or None)
        errors = [str(e) for e in list(ctx.import_error_list) + list(ctx.error_list)]
        if not ctx.resolved:
            out[key] = {"found": False, "reason": ctx.exit_reason, "redirects": list(ctx.redirect_list),
                         "errors": errors, "removed": bool(getattr(ctx, "removal_version", None))}
            action_ctx = action_loader.find_plugin_with_context(name, collection_list=collections or None)
            if action_ctx.resolved:  # an action plugin alone: all of it runs on the controller
                out[key]["reason"] = (f"it is an action plugin with no module ({action_ctx.plugin_resolved_path}): "
                                      "it runs on the controller, which the module bridge does not reproduce")
                out[key]["action_only"] = True
                out[key]["action_fqcn"] = action_ctx.resolved_fqcn or name
                out[key]["action_path"] = action_ctx.plugin_resolved_path
            continue
        path = ctx.plugin_resolved_path
        # as TaskExecutor._get_action_handler_with_module_context
        if ctx.action_plugin:
            action = ctx.action_plugin
        elif action_loader.has_plugin(name, collection_list=collections or None):
            action_ctx = action_loader.find_plugin_with_context(name, collection_list=collections or None)
            action = action_ctx.resolved_fqcn or name
        else:
            action = None
        with open(path, "rb") as fh:
            data = fh.read()
        style = _style(data)
        entry: dict[str, Any] = {
            "found": True, "fqcn": ctx.resolved_fqcn, "path": path, "style": style, "action": action,
            "redirects": list(ctx.redirect_list), "collection": ctx.plugin_resolved_collection,
            "deprecated": bool(ctx.deprecated),
            "deprecation": [str(w) for w in ctx.deprecation_warnings],
        }
        if style == "new":
            try:
                entry.update(_payload(name, path, data))
            except Exception as exc:  # AnsibleError: a module_utils import that cannot be found
                entry.update(found=False, reason=f"cannot collect its module_utils: {exc}")
        elif style in ("want_json", "old", "binary"):
            entry["data"] = base64.b64encode(data).decode()
            entry["interpreter"] = _interpreter(data) if style != "binary" else []
        out[key] = entry
    return out


def list_modules() -> dict[str, dict[str, Any]]:
    """Every module ansible-core can see, as ``ansible-doc -l`` lists them: FQCN -> its file and
    the action plugin that comes with it (None when it runs as a plain module)."""
    from ansible.plugins.list import list_plugins
    from ansible.plugins.loader import action_loader

    out: dict[str, dict[str, Any]] = {}
    for name, found in sorted(list_plugins("module").items()):
        path = found[0] if isinstance(found, tuple) else found
        if isinstance(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        action = action_loader.find_plugin_with_context(name)
        out[name] = {"path": str(path), "action": action.resolved_fqcn if action.resolved else None}
    return out


def _internal(C: Any) -> dict[str, Any]:
    """The ``_ansible_*`` arguments that come from configuration (ActionBase._update_module_args)."""
    from ansible.module_utils._internal import _traceback

    return {
        "_ansible_syslog_facility": C.DEFAULT_SYSLOG_FACILITY,
        "_ansible_selinux_special_fs": list(C.DEFAULT_SELINUX_SPECIAL_FS),
        "_ansible_no_target_syslog": bool(C.config.get_config_value("DEFAULT_NO_TARGET_SYSLOG")),
        "_ansible_debug": bool(C.DEFAULT_DEBUG),
        "_ansible_keep_remote_files": bool(C.DEFAULT_KEEP_REMOTE_FILES),
        "_ansible_target_log_info": C.config.get_config_value("TARGET_LOG_INFO"),
        "_ansible_tracebacks_for": _traceback.traceback_for(),
    }


def main() -> int:
    request = json.load(sys.stdin)
    # ansible's Display writes its warnings to stderr: the controller reads them from there
    import ansible.constants as C
    from ansible.release import __version__

    loader = plugin_loader(list(request.get("plan_dirs") or ()))
    answer: dict[str, Any] = {
        "ansible_version": __version__,
        "python": sys.executable,
        "module_paths": list(loader.module_loader._get_paths(subdirs=False)),
        "collections_paths": list(C.COLLECTIONS_PATHS),
        "internal": _internal(C),
    }
    if request.get("op") == "list":
        answer["modules"] = list_modules()
    else:
        answer["modules"] = resolve(dict(request.get("lookups") or {}))
    out = json.dumps(answer).encode()
    # fd 1 itself: ansible may have wrapped sys.stdout for fork safety
    while out:
        out = out[os.write(1, out):]
    return 0


if __name__ == "__main__":
    sys.exit(main())
