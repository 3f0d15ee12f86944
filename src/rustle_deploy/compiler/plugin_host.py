"""Run Ansible's own lookup, filter and test plugins for the compiler; run in a child process.

``ansible_plugins.py`` starts this file with the controller's Python (``python plugin_host.py
DIRS_JSON``) and keeps it for the compilation: ansible-core is imported once, with the plugin
directories Ansible adds for the playbook and each role (``lookup_plugins/``,
``filter_plugins/``, ``test_plugins/`` ...), and answers one JSON line per JSON request line.
It runs apart for the reason ``bridge/probe.py`` does: ansible-core's configuration, plugin
loaders and collection finder are global state, which must reflect this command's
``ansible.cfg``/``ANSIBLE_*`` and must not leak into the controller.

Request: ``{"kind": "lookup"|"filter"|"test", "name": NAME, "args": [...], "kwargs": {...},
"variables": {...}}`` (a lookup's ``args`` are its terms; a filter's or test's, its input then its
positional arguments). Answer: ``{"value": ...}`` (a lookup's list of values, with
``"deprecations"`` and ``"warnings"`` when it raised some: :func:`masked_json`) or ``{"error":
MESSAGE}``, the plugin's own message (with ``"load": true`` when it failed to load, not to run);
what JSON cannot hold as :func:`_encode` writes it. An undefined value travels both ways as
``{"__rustle_undefined": MESSAGE}`` (:data:`UNDEFINED`): a lookup term the host rendered to an
undefined value reaches the plugin as ansible-core's ``UndefinedMarker`` when the plugin sets
``accept_args_markers``, else the call answers that marker, as ansible-core's does. With ``"where": true`` a plugin is not called:
the answer is ``{"path": FILE, "module": NAME}``, where ansible-core found it (a collection's
plugin by its fully qualified name). Nothing here is imported by the controller.
"""

from __future__ import annotations

import json
import sys
from typing import Any

UNDEFINED = "__rustle_undefined"
VAULTED = "__rustle_vaulted"  # text ansible-core tags VaultedValue, as a plan carries it
DATACLASS = "__rustle_dataclass"  # an ansible-core dataclass (PluginInfo ...): its type's name, its fields
MASKED = "__rustle_masked"  # an ansible-core object templates see through a view: masked_json


def _markers_in(value: Any) -> Any:
    """``{UNDEFINED: MESSAGE}`` items of a list of terms (or values of kwargs) as ansible-core's markers."""
    from ansible._internal._templating._jinja_common import UndefinedMarker

    def one(item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {UNDEFINED}:
            return UndefinedMarker(hint=str(item[UNDEFINED]), _no_template_source=True)
        return item

    if isinstance(value, dict):
        return {k: one(v) for k, v in value.items()}
    return [one(v) for v in value]


def _encode(value: Any) -> Any:
    """What JSON cannot hold: a marker as ``{UNDEFINED: MESSAGE}``, a dataclass instance (the
    ``PluginInfo`` a plugin returns) as ``{DATACLASS: ITS TYPE'S NAME, "fields": {...}}``, which
    the host reads as a dict of that type's name, an enum as its value, anything else as text."""
    import dataclasses
    import enum

    from jinja2 import Undefined

    if isinstance(value, Undefined):
        return {UNDEFINED: value._undefined_message}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {DATACLASS: type(value).__name__,
                "fields": {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}}
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


def masked_json(value: Any) -> Any:
    """``value`` as JSON carries it to the host, keeping what ansible-core's templates see of
    its objects: one they see through a view (its ``_transform``: a DeprecationSummary as a
    dict, a WarningSummary as text, a PluginInfo as a dict) as ``{MASKED: ITS TYPE'S NAME,
    "view": ..., "fields": [[NAME, VALUE], ...]}``, which the host keeps as that view and
    ``unmask`` turns back into the object; any other dataclass (an ``Event``) as ``{DATACLASS:
    NAME, "fields": [[NAME, VALUE], ...]}`` (pairs: the fields' order survives a JSON
    document whose keys are sorted); an enum as its value; containers item by item."""
    import dataclasses
    import enum

    from ansible._internal._templating._transform import _type_transform_mapping

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [[f.name, masked_json(getattr(value, f.name))] for f in dataclasses.fields(value)]
        transform = _type_transform_mapping.get(type(value))
        if transform is None:
            return {DATACLASS: type(value).__name__, "fields": fields}
        return {MASKED: type(value).__name__, "view": masked_json(transform(value)), "fields": fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): masked_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_json(v) for v in value]
    return value


def _setup(dirs: list[str]) -> Any:
    import os

    from ansible.plugins import loader

    # the playbook's own collections/ (the first directory is the playbook's), as ansible-playbook adds it
    beside = [os.path.join(dirs[0], "collections")] if dirs and os.path.isdir(os.path.join(dirs[0], "collections")) else []
    loader.init_plugin_loader(prefix_collections_path=beside or None)
    for directory in dirs:
        loader.add_all_plugin_dirs(directory)
    return loader


def _answer(loader: Any, request: dict[str, Any]) -> dict[str, Any]:
    kind, name = request["kind"], request["name"]
    args, kwargs = list(request.get("args") or []), dict(request.get("kwargs") or {})
    if kind == "lookup":
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar

        data_loader = DataLoader()
        if request.get("secrets"):
            import base64

            from ansible.parsing.vault import VaultSecret

            data_loader.set_vault_secrets([(label, VaultSecret(base64.b64decode(pw)))
                                           for label, pw in request["secrets"]])
        if request.get("where"):  # a collection's lookup: the file ansible-core loads it from
            found = loader.lookup_loader.find_plugin_with_context(name)
            if not found.resolved:
                return {"error": f"lookup plugin {name!r} not found"}
            return {"path": found.plugin_resolved_path, "module": found.plugin_resolved_name}
        try:
            plugin = loader.lookup_loader.get(name, loader=data_loader, templar=Templar(loader=data_loader))
        except Exception as exc:  # noqa: BLE001 - its file raised: ansible-core's "failed to load"
            return {"error": str(exc), "load": True}
        if plugin is None:
            return {"error": f"lookup plugin {name!r} not found"}
        args, kwargs = _markers_in(args), _markers_in(kwargs)
        if not plugin.accept_args_markers:  # ansible-core answers the first marker instead
            from ansible._internal._templating._jinja_common import Marker

            first = next((v for v in [*args, *kwargs.values()] if isinstance(v, Marker)), None)
            if first is not None:
                return {"value": [first]}
        from ansible._internal._display_utils import DeferredWarningContext

        variables = request.get("variables") or {}
        # what the plugin deprecates or warns of, as ansible-core's TaskExecutor captures it
        # for the task's result (a lookup runs while the task's arguments are rendered)
        with DeferredWarningContext(variables=variables) as captured:
            answer = {"value": list(plugin.run(args, variables=variables, **kwargs))}
        if captured.get_deprecation_warnings():
            answer["deprecations"] = masked_json(captured.get_deprecation_warnings())
        if captured.get_warnings():
            answer["warnings"] = masked_json(captured.get_warnings())
        return answer
    table = loader.filter_loader if kind == "filter" else loader.test_loader
    try:
        found = table.get(name)
    except Exception as exc:  # noqa: BLE001 - its file or its plugin raised while loading
        return {"error": str(exc), "load": True}
    if found is None:
        return {"error": f"{kind} plugin {name!r} not found"}
    if request.get("where"):  # a collection's plugin: the file ansible-core loads it from
        return {"path": found._original_path, "module": found.j2_function.__module__}
    value = found.j2_function(*args, **kwargs)
    from ansible._internal._datatag._tags import VaultedValue

    if isinstance(value, str) and VaultedValue.is_tagged_on(value):  # vault(..., wrap_object=True)
        return {"value": {VAULTED: str(value)}}
    return {"value": value}


def main() -> int:
    loader = _setup(json.loads(sys.argv[1]))
    for line in sys.stdin:
        try:
            answer = _answer(loader, json.loads(line))
        except Exception as exc:  # noqa: BLE001 - the plugin's failure is the answer
            answer = {"error": getattr(exc, "message", None) or str(exc)}
        try:
            text = json.dumps(answer, default=_encode)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"error": f"its result cannot be carried to the host: {exc}"})
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
