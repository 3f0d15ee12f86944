"""Write one JSON line per task result of ansible-playbook to $RUSTLE_ACCEPTANCE_RESULTS.

The acceptance harness enables it beside the default callback, so the oracle's per-task
results are read as data (the same shape rustle-deploy's run journal has), not scraped. Only
the ansible-playbook the harness started writes: the variable leaves the environment when the
callback loads, so an ansible-playbook that a task of the target runs (copy's no_log.yml) does
not add its results to the run's.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: results_jsonl
    type: aggregate
    short_description: task results as JSON lines (rustle-deploy's acceptance harness)
    description: One line per task result, written to $RUSTLE_ACCEPTANCE_RESULTS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results_jsonl"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.pop("RUSTLE_ACCEPTANCE_RESULTS", None)

    def _write(self, result, status, ignored=False):
        res = result.result
        line = {"task": result.task.get_name(), "host": result._host.get_name(), "module": result.task.action, "status": status,
                "ignored": ignored, "msg": str(res.get("msg", ""))[:2000]}
        if "assertion" in res:
            line["assertion"] = str(res["assertion"])
        if status == "ok" and res.get("changed"):
            line["status"] = "changed"
        if self._path is None:  # an ansible-playbook run by a task of the target
            return
        with open(self._path, "a") as fh:
            fh.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed", ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
