# The role's own debug action: ansible-core finds it first for `debug:` and
# `ansible.legacy.debug:`, in every play of the playbook (ansible.builtin.debug stays the built-in).
from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result["msg"] = "own: " + str(self._task.args.get("msg", "no msg"))
        return result
