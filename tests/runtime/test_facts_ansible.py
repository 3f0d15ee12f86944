"""Facts as ansible-core's setup gathers them (issue 14): a differential test on this machine.

One ansible-playbook run (local connection) and one run of the same plays as a plan: ``setup``
with every gather_subset below, ``filter``, and tasks that read facts without any setup (the
runtime gathers a fact's collector when the fact is first read). Key sets must be equal; values
too, but for those that change between two runs (``VOLATILE``, each compared by its shape) and
the parts the runtime does not gather (``NOT_GATHERED``, each with its reason).
"""

from __future__ import annotations

from typing import Any

import pytest

from .oracle import _substitute, _write_project, needs_ansible, run_ansible, run_ours

pytestmark = pytest.mark.ansible

# facts whose value changes between two runs a few seconds apart: compared by shape
VOLATILE = {
    "ansible_date_time": lambda v: sorted(v) + [v["tz"], v["tz_offset"]],
    "ansible_env": lambda v: isinstance(v, dict) and "PATH" in v,  # each run's own process environment
    "ansible_loadavg": lambda v: sorted(v),
    "ansible_memfree_mb": lambda v: isinstance(v, int),
    "ansible_memory_mb": lambda v: (v["real"]["total"], v["swap"]["total"], sorted(v["nocache"])),
    "ansible_uptime_seconds": lambda v: isinstance(v, int),
    "ansible_mounts": lambda v: sorted((m["mount"], m["device"], m["fstype"], m["options"], m.get("uuid"),
                                        m.get("size_total"), sorted(m)) for m in v),
    # the interpreter a run uses (the artifact's python3, Ansible's ansible_python_interpreter)
    "ansible_python": lambda v: {k: x for k, x in v.items() if k != "executable"},
}
# what the runtime does not gather, and why
NOT_GATHERED: set[str] = set()
# ethtool's interface facts, lspci's ``host`` and sg_inq's ``serial`` of a block device are
# gathered when the tools exist, as by ansible-core: compared as they are
UNORDERED = ("ansible_interfaces", "ansible_virtualization_tech_guest", "ansible_virtualization_tech_host")

SUBSETS = {
    "all": None,
    "min": ["!all"],
    "network": ["!all", "!min", "network"],
    "hardware": ["!all", "!min", "hardware"],
    "fine-grained": ["!all", "!min", "mounts", "ssh_host_key_rsa_public", "virtualization_type", "is_chroot"],
    "lsb dns caps": ["!all", "!min", "lsb", "dns", "caps", "cmdline", "loadavg", "chroot", "systemd"],
}
# what roles read (each a fact the runtime gathers lazily, by its collector)
READS = {
    "address": "{{ ansible_default_ipv4.address | default('none') }}",
    "memtotal": "{{ ansible_memtotal_mb }}",
    "mounts": "{{ ansible_mounts | map(attribute='mount') | list }}",
    "lsb": "{{ ansible_lsb }}",
    "virtualization": "{{ ansible_virtualization_type }}/{{ ansible_virtualization_role }}",
    "vcpus": "{{ ansible_processor_vcpus }} {{ ansible_processor_count }} {{ ansible_processor_cores }}",
    "interfaces": "{{ ansible_interfaces | sort }}",
    "dns": "{{ ansible_dns }}",
    "ssh keys": "{{ ansible_ssh_host_key_ed25519_public | default('none') }}",
    "devices": "{{ ansible_devices | dict2items | map(attribute='key') | sort }}",
    "lo": "{{ ansible_lo.ipv4.address }} {{ ansible_facts['lo']['mtu'] }}",
    "apparmor": "{{ ansible_apparmor.status }} {{ ansible_fips }} {{ ansible_is_chroot }}",
    "service_mgr": "{{ ansible_service_mgr }} {{ ansible_user_id }} {{ ansible_effective_user_id }}",
}


def _setup_tasks() -> list[dict[str, Any]]:
    setups: dict[str, dict[str, Any]] = {
        name: {} if subset is None else {"gather_subset": subset} for name, subset in SUBSETS.items()}
    setups["hardware"]["gather_timeout"] = 1  # bounds each mount's statvfs: none waits that long here
    setups["filter"] = {"filter": ["ansible_*_mb", "ansible_lo"]}
    tasks: list[dict[str, Any]] = []
    for name, args in setups.items():  # a task result's ansible_facts is not an event's: print them
        tasks += [{"name": "setup " + name, "setup": args, "register": "r"},
                  {"name": "facts " + name, "debug": {"msg": "{{ r }}"}}]
    return tasks


def _read_tasks() -> list[dict[str, Any]]:
    return [{"name": "read " + name, "debug": {"msg": text}} for name, text in READS.items()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ansible's results, ours) by task name: Ansible gathers first (its reads need facts), the
    plan reads first (each read gathers what it needs), then runs the same setups."""
    needs_ansible()
    tmp = tmp_path_factory.mktemp("facts")
    a, o = tmp / "a" / "proj", tmp / "o" / "proj"
    for d in (a, o):
        _write_project(d, {})
    theirs = run_ansible(a, _substitute([{"name": "facts", "tasks": _setup_tasks() + _read_tasks()}], a))
    ours = run_ours(o, _substitute([{"name": "facts", "tasks": _read_tasks() + _setup_tasks()}], o), timeout=300)
    return dict(theirs[0]), dict(ours[0])


def comparable(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` with the volatile ones reduced to their shape, unordered lists sorted and the
    parts the runtime does not gather left out."""
    out = {}
    for key, value in facts.items():
        if key in NOT_GATHERED:
            continue
        if key in VOLATILE:
            value = VOLATILE[key](value)
        elif key in UNORDERED:
            value = sorted(value)
        out[key] = value
    return out


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Each key whose (comparable) value differs, or that only one side has: (ansible's, ours)."""
    a, o = comparable(theirs), comparable(ours)
    return {k: (a.get(k, "<missing>"), o.get(k, "<missing>")) for k in sorted(set(a) | set(o)) if a.get(k) != o.get(k)}


def test_setup_gathers_the_facts_ansible_does_with_the_same_values(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    theirs, ours = runs
    a, o = theirs["facts all"]["msg"]["ansible_facts"], ours["facts all"]["msg"]["ansible_facts"]
    assert len(a) > 100 and "ansible_lo" in a
    assert not differences(a, o)


@pytest.mark.parametrize("name", [n for n in SUBSETS if n != "all"] + ["filter"])
def test_gather_subset_and_filter_select_the_facts_ansible_does(runs: tuple[dict[str, Any], dict[str, Any]],
                                                                name: str) -> None:
    theirs, ours = runs
    a, o = theirs["facts " + name]["msg"], ours["facts " + name]["msg"]
    assert not a.get("failed") and not o.get("failed"), (a, o)
    assert sorted(set(o["ansible_facts"])) == sorted(set(a["ansible_facts"]) - NOT_GATHERED)
    assert not differences(a["ansible_facts"], o["ansible_facts"])


def test_facts_read_without_setup_are_ansibles(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The runtime gathers a fact's collector when a task first reads it: the values are those
    Ansible's gathering gives."""
    theirs, ours = runs
    for name in READS:
        assert ours["read " + name]["msg"] == theirs["read " + name]["msg"], name
