"""The Ansible 2.19 keywords of plays, blocks, tasks, roles and imports, and what becomes of each.

Every keyword Ansible accepts is listed here (taken from ansible-core's ``fattributes``), so that
a misspelled one is an error with a suggestion rather than a module lookup, and every keyword
has exactly one fate:

* carried into the plan (``CARRIED``, task extensions with Ansible's meaning);
* inherited from a play, block, role or import onto the tasks inside (``INHERITED``);
* handed to the rollout scheduler (``serial``, ``max_fail_percentage``, ``any_errors_fatal``,
  ``order``: docs/rollouts.md);
* ``run_once``, ``throttle`` and ``delegate_to: localhost`` cut the play into phases
  (``rustle_deploy.phases``, docs/phases.md);
* refused with the reason (``REFUSED``), never silently dropped.
"""

from __future__ import annotations

import difflib

# ansible.playbook.task.Task.fattributes (+ Handler's listen)
TASK = frozenset({
    "action", "any_errors_fatal", "args", "async", "become", "become_exe", "become_flags",
    "become_method", "become_user", "changed_when", "check_mode", "collections", "connection",
    "debugger", "delay", "delegate_facts", "delegate_to", "diff", "environment", "failed_when",
    "ignore_errors", "ignore_unreachable", "local_action", "loop", "loop_control",
    "module_defaults", "name", "no_log", "notify", "poll", "port", "register", "remote_user",
    "retries", "run_once", "tags", "throttle", "timeout", "until", "vars", "when",
})
HANDLER = TASK | {"listen"}
BLOCK = frozenset({
    "always", "any_errors_fatal", "become", "become_exe", "become_flags", "become_method",
    "become_user", "block", "check_mode", "collections", "connection", "debugger",
    "delegate_facts", "delegate_to", "diff", "environment", "ignore_errors", "ignore_unreachable",
    "module_defaults", "name", "no_log", "notify", "port", "remote_user", "rescue", "run_once",
    "tags", "throttle", "timeout", "vars", "when",
})
PLAY = frozenset({
    "any_errors_fatal", "become", "become_exe", "become_flags", "become_method", "become_user",
    "check_mode", "collections", "connection", "debugger", "diff", "environment", "fact_path",
    "force_handlers", "gather_facts", "gather_subset", "gather_timeout", "handlers", "hosts",
    "ignore_errors", "ignore_unreachable", "max_fail_percentage", "module_defaults", "name",
    "no_log", "order", "port", "post_tasks", "pre_tasks", "remote_user", "roles", "run_once",
    "serial", "strategy", "tags", "tasks", "throttle", "timeout", "vars", "vars_files",
    "vars_prompt",
})
ROLE = frozenset({
    "any_errors_fatal", "become", "become_exe", "become_flags", "become_method", "become_user",
    "check_mode", "collections", "connection", "debugger", "delegate_facts", "delegate_to",
    "diff", "environment", "ignore_errors", "ignore_unreachable", "module_defaults", "name",
    "no_log", "port", "remote_user", "role", "run_once", "tags", "throttle", "timeout", "vars",
    "when",
})
IMPORT_PLAYBOOK = frozenset({"import_playbook", "name", "vars", "tags", "when"})
# what include_tasks accepts beside its file (TaskInclude.VALID_INCLUDE_KEYWORDS)
INCLUDE_TASKS = frozenset({
    "action", "args", "collections", "debugger", "ignore_errors", "loop", "loop_control",
    "loop_with", "name", "no_log", "register", "run_once", "tags", "timeout", "vars", "when",
})
IMPORT_TASKS = frozenset({"name", "vars", "tags", "when", "become", "become_user",
                          "become_method", "become_exe", "become_flags", "ignore_errors", "no_log", "check_mode", "diff",
                          "environment", "timeout", "args", "action", "collections", "debugger",
                          "delegate_to", "run_once", "any_errors_fatal", "throttle", "remote_user", "port",
                          "connection", "ignore_unreachable", "delegate_facts", "notify"})
INCLUDE_ROLE_ARGS = frozenset({"name", "role", "tasks_from", "vars_from", "defaults_from",
                               "handlers_from", "public", "allow_duplicates", "apply",
                               "rolespec_validate"})

# Carried into the plan as they are (task extensions, PLAN_FORMAT.md).
CARRIED = ("register", "loop", "loop_control", "changed_when", "failed_when", "ignore_errors",
           "no_log", "become", "become_user", "become_method", "become_exe", "become_flags",
           "environment", "vars", "retries", "delay", "until", "check_mode", "diff", "timeout", "listen", "run_once", "throttle",
           "async", "poll", "ignore_unreachable")
# Keywords a play, block, role or import hands down to the tasks inside it when they do not set
# their own (``when``, ``tags`` and ``environment`` add up instead).
INHERITED = ("become", "become_user", "become_method", "ignore_errors", "no_log", "check_mode",
             "diff", "timeout", "delegate_to", "run_once", "any_errors_fatal", "throttle",
             "ignore_unreachable", "debugger", "collections", "connection", "remote_user", "port",
             "become_exe", "become_flags", "module_defaults", "delegate_facts")
REFUSED: dict[str, str] = {}


def suggest(word: str, choices: frozenset[str] | tuple[str, ...] | list[str]) -> str | None:
    """The closest of ``choices`` to a misspelled ``word``, if any is close."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.75)
    return close[0] if close else None
