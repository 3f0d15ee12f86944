"""The mutable inventory the parsers fill: groups, hosts, their links and their own variables.

A port of ``ansible.inventory.data.InventoryData`` (and its Group and Host) as far as the
outcome is visible: group depth (the longest path from ``all``, which orders variable
precedence), ``ansible_group_priority``, recursion checks, the ``set_variable`` rule that a name
which is both a group and a host means the group, and ``reconcile`` (every top group becomes a
child of ``all``; hosts in no other group land in ``ungrouped``). Parsers raise
:class:`DataError` (a ``ValueError``) and the caller adds file and line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataError", "GroupData", "HostData", "InventoryData", "LOCALHOST_NAMES"]

LOCALHOST_NAMES = ("127.0.0.1", "localhost", "::1")


class DataError(ValueError):
    """An inventory that breaks a structural rule (unknown group, loop, empty name)."""


class GroupData:
    """One group while parsing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.depth = 0
        self.priority = 1
        self.hosts: list[HostData] = []
        self._host_names: set[str] = set()
        self.vars: dict[str, Any] = {}
        self.origins: dict[str, str] = {}  # where each of ``vars`` was written (ansible's origin)
        self.child_groups: list[GroupData] = []
        self.parent_groups: list[GroupData] = []

    def __repr__(self) -> str:
        return f"GroupData({self.name!r})"

    def _walk(self, rel: str, include_self: bool = False) -> list[GroupData]:
        """Every group reachable over ``rel``, nearest first, each once."""
        ordered: list[GroupData] = [self] if include_self else []
        seen: set[int] = {id(self)} if include_self else set()
        frontier = [self]
        while frontier:
            nxt: list[GroupData] = []
            for g in frontier:
                for other in getattr(g, rel):
                    if id(other) not in seen:
                        seen.add(id(other))
                        ordered.append(other)
                        nxt.append(other)
            frontier = nxt
        return ordered

    def ancestors(self) -> list[GroupData]:
        return self._walk("parent_groups")

    def descendants(self, include_self: bool = False) -> list[GroupData]:
        return self._walk("child_groups", include_self)

    def add_child_group(self, group: GroupData) -> None:
        if group is self:
            raise DataError(f"group '{self.name}' cannot be a child of itself")
        if group in self.child_groups:
            return
        start_ancestors = group.ancestors()
        new_ancestors = self.ancestors()
        if group in new_ancestors:
            raise DataError(
                f"adding group '{group.name}' as child to '{self.name}' "
                "creates a recursive dependency loop"
            )
        new_ancestors.append(self)
        additions = [g for g in new_ancestors if g not in start_ancestors]
        self.child_groups.append(group)
        group.depth = max(self.depth + 1, group.depth)
        group._check_children_depth()
        if self not in group.parent_groups:
            group.parent_groups.append(self)
            for h in group.all_hosts():
                for g in additions:
                    if g not in h.groups:
                        h.groups.append(g)

    def _check_children_depth(self) -> None:
        depth = self.depth
        seen: set[int] = set()
        frontier = list(self.child_groups)
        while frontier:
            seen.update(id(g) for g in frontier)
            depth += 1
            nxt: list[GroupData] = []
            for g in frontier:
                if g.depth < depth:
                    g.depth = depth
                    nxt.extend(g.child_groups)
            frontier = nxt
            if depth - self.depth > len(seen):
                raise DataError(f"the group named '{self.name}' has a recursive dependency loop")

    def add_host(self, host: HostData) -> None:
        if host.name in self._host_names:
            return
        self._host_names.add(host.name)
        self.hosts.append(host)
        host.add_group(self)

    def remove_host(self, host: HostData) -> None:
        if host.name in self._host_names:
            self._host_names.discard(host.name)
            self.hosts.remove(host)
            host.remove_group(self)

    def set_variable(self, key: str, value: Any, origin: str | None = None) -> None:
        if key == "ansible_group_priority":
            try:
                self.priority = int(value)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"ansible_group_priority of group '{self.name}' must be an integer, "
                    f"got {value!r}"
                ) from exc
        else:
            self.vars[key] = value
            _set_origin(self.origins, key, origin)

    def all_hosts(self) -> list[HostData]:
        """Hosts of this group and of every descendant, in Ansible's order, each once."""
        out: list[HostData] = []
        seen: set[str] = set()
        for g in self.descendants(include_self=True):
            for h in g.hosts:
                if h.name not in seen:
                    seen.add(h.name)
                    if self.name == "all" and h.implicit:
                        continue
                    out.append(h)
        return out


class HostData:
    """One host while parsing."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.vars: dict[str, Any] = {}
        self.origins: dict[str, str] = {}  # where each of ``vars`` was written (ansible's origin)
        self.groups: list[GroupData] = []
        self.implicit = False
        self.source: str | None = None  # the source that named it first (ansible-core's inventory_file)
        self.added = False  # made by add_host (no source: inventory_file and inventory_dir are None)
        if port:
            self.vars["ansible_port"] = int(port)

    def __repr__(self) -> str:
        return f"HostData({self.name!r})"

    def add_group(self, group: GroupData) -> None:
        for old in group.ancestors():
            if old not in self.groups:
                self.groups.append(old)
        if group not in self.groups:
            self.groups.append(group)

    def remove_group(self, group: GroupData) -> None:
        if group not in self.groups:
            return
        self.groups.remove(group)
        for old in group.ancestors():
            if old.name != "all" and not any(old in g.ancestors() for g in self.groups):
                self.remove_group(old)

    def set_variable(self, key: str, value: Any, origin: str | None = None) -> None:
        self.vars[key] = value
        _set_origin(self.origins, key, origin)


def _set_origin(origins: dict[str, str], key: str, origin: str | None) -> None:
    if origin is None:
        origins.pop(key, None)
    else:
        origins[key] = origin


class InventoryData:
    """Hosts and groups of one inventory source, with Ansible's invariants."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupData] = {}
        self.hosts: dict[str, HostData] = {}
        self.localhost: HostData | None = None
        # the source being read: a new host's ``inventory_file`` (as ansible-core's current_source)
        self.current_source: str | None = None
        for name in ("all", "ungrouped"):
            self.add_group(name)
        self.add_child("all", "ungrouped")

    def add_group(self, name: str) -> str:
        if not name:
            raise DataError("invalid empty group name")
        if not isinstance(name, str):
            raise DataError(f"invalid group name {name!r}: expected a string")
        if name not in self.groups:
            self.groups[name] = GroupData(name)
        return name

    def add_host(self, name: str, group: str | None = None, port: int | None = None) -> str:
        if not isinstance(name, str):
            raise DataError(f"invalid host name {name!r}: expected a string")
        if not name:
            raise DataError("invalid empty host name")
        g = None
        if group:
            if group not in self.groups:
                raise DataError(f"could not find group {group} in inventory")
            g = self.groups[group]
        if name not in self.hosts:
            self.hosts[name] = HostData(name, port)
            self.hosts[name].source = self.current_source
            if name in LOCALHOST_NAMES and self.localhost is None:
                self.localhost = self.hosts[name]
        if g is not None:
            g.add_host(self.hosts[name])
        return name

    def set_variable(self, entity: str, key: Any, value: Any, origin: str | None = None) -> None:
        """Set a variable on a group or, if no group has that name, on a host (as Ansible);
        ``origin``: where it was written (``FILE:LINE[:COLUMN]``), when known."""
        if not isinstance(key, str):
            key = str(key)
        if entity in self.groups:
            self.groups[entity].set_variable(key, value, origin)
        elif entity in self.hosts:
            self.hosts[entity].set_variable(key, value, origin)
        else:
            raise DataError(f"could not identify group or host named {entity}")

    def add_child(self, group: str, child: str) -> None:
        if group not in self.groups:
            raise DataError(f"{group} is not a known group")
        g = self.groups[group]
        if child in self.groups:
            g.add_child_group(self.groups[child])
        elif child in self.hosts:
            g.add_host(self.hosts[child])
        else:
            raise DataError(f"{child} is not a known host nor group")

    def reconcile(self) -> list[str]:
        """Apply Ansible's post-parse rules; return the names that are both host and group."""
        all_group = self.groups["all"]
        ungrouped = self.groups["ungrouped"]
        for group in list(self.groups.values()):
            if group.name != "all" and not group.ancestors():
                all_group.add_child_group(group)
        for host in self.hosts.values():
            mine = host.groups
            if ungrouped in mine:
                if set(map(id, mine)) - {id(all_group), id(ungrouped)}:
                    ungrouped.remove_host(host)
            elif not host.implicit:
                if not mine or (len(mine) == 1 and all_group in mine):
                    ungrouped.add_host(host)
        return sorted(set(self.groups) & set(self.hosts))
