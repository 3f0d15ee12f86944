"""The runtime under every older CPython that is installed (3.8 is the floor)."""

from __future__ import annotations

import glob
import sys

import pytest

from .conftest import build_test_artifact, make_plan, run_artifact, task

VERSIONS = ["3.8", "3.9", "3.10", "3.12", "3.13"]


def _interpreter(version: str) -> str | None:
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python3"))
    return found[-1] if found else None


@pytest.mark.parametrize("version", VERSIONS)
def test_runs_under_interpreter(version, tmp_path):
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} under /root/.pyenv/versions")
    plain = build_test_artifact(tmp_path, make_plan([
        task("command", {"_raw_params": "echo plain"}, name="cmd", register="r", when=["true"]),
        task("assert", {"that": ["r.stdout == 'plain'", "r is changed"]}, name="check"),
    ]), with_jinja=False)
    r = run_artifact(plain, "run", "--host", "h1", python=python, flags=("-S",))
    assert r.rc == 0, r.stderr
    assert r.result("check")["status"] == "ok"
    assert r.of("run_start")[0]["python"].startswith(version + ".")
    assert run_artifact(plain, "verify", python=python).rc == 0

    (tmp_path / "payload").write_text("{{ 7 * 6 }}")
    templated = build_test_artifact(tmp_path, make_plan([
        task("set_fact", {"words": "{{ ['a', 'b'] | map('upper') | list }}"}, name="sf"),
        task("debug", {"msg": "{{ words | join('-') }} {{ ansible_python_version }}"}, name="show"),
        task("command", {"_raw_params": f"cat {tmp_path}/payload"}, name="read", register="p"),
        task("debug", {"msg": "{{ p.stdout | trim }}"}, name="host data"),
        task("debug", {"msg": "{{ ''.__class__ }}"}, name="sandbox", ignore_errors=True),
    ]))
    r = run_artifact(templated, "run", "--host", "h1", python=python, flags=("-S",))
    assert r.rc == 0, r.stderr
    assert r.result("show")["msg"].startswith("A-B " + version + ".")
    assert r.result("host data")["msg"] == "{{ 7 * 6 }}"
    assert "unsafe" in r.result("sandbox")["msg"]


def test_current_interpreter_is_not_older_than_floor():
    assert sys.version_info >= (3, 8)
