from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        self._display.deprecated("the warning action is deprecated", date="2099-01-01")
        self._display.warning("the warning action warns")
        return dict(changed=False, said=self._task.args.get("say", ""))
