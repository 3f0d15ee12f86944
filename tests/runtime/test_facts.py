"""The runtime's fact collectors on this machine, beyond the oracle comparison
(test_facts_ansible.py): what is gathered when, and the paths taken without ``ip``."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from rustle_deploy.runtime_index import runtime_root

from .conftest import task


@pytest.fixture
def facts_module():
    sys.path.insert(0, str(runtime_root()))
    from rustle_runtime import facts  # type: ignore[import-not-found]

    return facts


@pytest.mark.skipif(shutil.which("ip") is None and not any(
    os.path.exists(d + "/ip") for d in ("/sbin", "/usr/sbin")), reason="needs ip to compare with")
def test_without_ip_the_addresses_come_from_proc_and_ioctls(facts_module, monkeypatch) -> None:
    """/proc/net/if_inet6 and the SIOCGIF* ioctls give what ``ip -j addr`` gives (but
    locally_reachable_ips, which needs ``ip``'s local route table, and ethtool's facts, which
    ansible-core asks for on its ``ip`` path only)."""
    with_ip = facts_module.gather({"network"})
    for value in with_ip.values():
        if isinstance(value, dict) and "device" in value:
            for key in ("features", "timestamping", "hw_timestamp_filters", "phc_index"):
                value.pop(key, None)
    real = facts_module._bin
    monkeypatch.setattr(facts_module, "_bin", lambda name: None if name == "ip" else real(name))
    without = facts_module.gather({"network"})
    assert without.pop("ansible_locally_reachable_ips") == {"ipv4": [], "ipv6": []}
    with_ip.pop("ansible_locally_reachable_ips")
    assert without == with_ip
    assert "ansible_lo" in without and without["ansible_lo"]["ipv4"]["address"] == "127.0.0.1"


def test_a_fact_read_runs_only_its_collector(apply, tmp_path) -> None:
    """``ansible_os_family`` and ``ansible_facts.memtotal_mb`` run the distribution and hardware
    collectors (with platform, which hardware reads); the carry file says which ran."""
    carry = tmp_path / "carry.json"
    res = apply([task("debug", {"msg": "{{ ansible_os_family }} {{ ansible_facts.memtotal_mb > 0 }}"})], None,
                "--carry", str(carry))
    assert res.rc == 0, res.stderr
    (result,) = [e for e in res.events if e["event"] == "task_result"]
    assert result["msg"].endswith(" True"), result
    state = json.loads(carry.read_text())
    assert state["facts_collected"] == ["distribution", "hardware"]
    assert "ansible_mounts" in state["facts"] and "ansible_lsb" not in state["facts"]


def test_ansible_facts_as_a_whole_runs_every_collector(apply, tmp_path) -> None:
    carry = tmp_path / "carry.json"
    res = apply([task("debug", {"msg": "{{ ansible_facts | length }}"})], None, "--carry", str(carry))
    assert res.rc == 0, res.stderr
    state = json.loads(carry.read_text())
    assert len(state["facts_collected"]) > 20
    (result,) = [e for e in res.events if e["event"] == "task_result"]
    assert int(result["msg"]) == len(state["facts"]) > 100
