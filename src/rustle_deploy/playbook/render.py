"""Templating on the controller, with the runtime's own code (Ansible's filters and tests).

The front end renders only what must be known before anything ships: play host patterns,
``import_playbook``/``vars_files``/include file names, role names. Their variables are the
ones every host shares (extra vars, play and role vars, ``playbook_dir``); a name that needs
a host's own data (inventory variables, facts, registered results) is refused with its
location rather than guessed.
"""

from __future__ import annotations

from typing import Any

from rustle_deploy.model import Unsafe, tag_unsafe
from rustle_deploy.runtime_index import import_runtime

__all__ = ["Renderer", "TemplateFailed", "has_template"]


class TemplateFailed(Exception):
    """A template could not be rendered with the variables known on the controller."""


def has_template(value: Any) -> bool:
    if isinstance(value, Unsafe):
        return False
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_template(v) for v in value)
    return False


def referenced_names(value: Any) -> set[str]:
    """Every variable name the templates in ``value`` read (Jinja2's undeclared variables)."""
    if not has_template(value):
        return set()
    if isinstance(value, dict):
        return set().union(*(referenced_names(k) | referenced_names(v) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return set().union(*(referenced_names(v) for v in value))
    import jinja2
    from jinja2 import meta

    try:
        return set(meta.find_undeclared_variables(jinja2.Environment().parse(value)))
    except jinja2.TemplateSyntaxError:
        return set()


class Renderer:
    def __init__(self, base_dir: str | None = None) -> None:
        self._mod: Any = None
        self.base_dir = base_dir  # where controller lookups run (the playbook's directory)

    def render(self, value: Any, layers: list[dict[str, Any]]) -> Any:
        """``value`` templated over ``layers`` (lowest precedence first)."""
        if not has_template(value):
            return value
        return self._run(lambda templar, scope: templar.template(value, scope), layers)

    def condition(self, expression: str, layers: list[dict[str, Any]]) -> bool:
        """A ``when`` expression decided over ``layers`` as the host's runtime decides it."""
        return bool(self._run(lambda templar, scope: templar.condition(str(expression), scope), layers))

    def _run(self, work: Any, layers: list[dict[str, Any]]) -> Any:
        if self._mod is None:
            self._mod = import_runtime()
        mod = self._mod
        templar = mod.Templar()
        # an !unsafe string is the runtime's host data: read as it is, never rendered
        layers = [layer if (tagged := tag_unsafe(layer)) is layer else mod.untag(tagged)
                  for layer in layers if layer]
        scope = mod.VarScope(layers, templar)
        from rustle_deploy.compiler.lookups import ControllerLookups, running

        runner = ControllerLookups(self.base_dir) if self.base_dir is not None else None
        try:
            with running(runner):  # lookup('first_found', ...) and the like, as Ansible runs them
                return work(templar, scope)
        except (mod.TemplateError, KeyError) as exc:
            raise TemplateFailed(str(exc)) from exc
