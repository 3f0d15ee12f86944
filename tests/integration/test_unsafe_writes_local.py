"""``unsafe_writes`` against ansible-playbook: where a file cannot be replaced atomically, the
write fails, or with ``unsafe_writes: true`` (or ``ANSIBLE_UNSAFE_WRITES`` in the task's
environment) the file is written in place, as ansible-core's ``atomic_move`` falls back.

Two real cases, each tool run in a mount namespace of its own (``unshare -m``, root only): a
file bind-mounted over another (a rename onto it fails with EBUSY, as onto a container's
/etc/hosts), and a file in an immutable directory (``chattr +i``: no temp file can be made
beside it, the file itself stays writable). Both tools run the same playbook over one
``ansible_connection=local`` host, each with its own files; compared: the results the playbook
writes (failed or changed, and the failure's words) and the bytes that land.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ansible_env
from .test_playbooks_ansible import ANSIBLE

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                                or shutil.which("chattr") is None, reason="needs root, unshare and chattr")

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: copy onto a bind-mounted file
      copy: {content: "new copy\\n", dest: "{{ w }}/mounted/target"}
      register: plain
      ignore_errors: true
    - name: copy onto it with unsafe_writes
      copy: {content: "unsafe copy\\n", dest: "{{ w }}/mounted/target", unsafe_writes: true}
      register: unsafe
    - name: lineinfile, unsafe_writes from the environment
      lineinfile: {path: "{{ w }}/mounted/target", line: "a line"}
      environment: {ANSIBLE_UNSAFE_WRITES: "1"}
      register: lines
    - name: lineinfile without
      lineinfile: {path: "{{ w }}/mounted/target", line: "another line"}
      register: lines_plain
      ignore_errors: true
    - name: copy into an immutable directory
      copy: {content: "kept out\\n", dest: "{{ w }}/frozen/f"}
      register: frozen_plain
      ignore_errors: true
    - name: copy into it with unsafe_writes
      copy: {content: "written in place\\n", dest: "{{ w }}/frozen/f", unsafe_writes: true, mode: "0640"}
      register: frozen
    - name: the results
      copy:
        dest: "{{ w }}/results.txt"
        content: |
          {{ plain.failed | default(false) }} {{ 'failed final rename' in plain.msg }} {{ '[Errno 16] Device or resource busy' in plain.msg }}
          {{ unsafe.changed }} {{ unsafe.failed | default(false) }}
          {{ lines.changed }}
          {{ lines_plain.failed | default(false) }} {{ 'failed final rename' in lines_plain.msg }}
          {{ frozen_plain.failed | default(false) }} {{ frozen_plain.msg | default('') | replace(w, 'W') }}
          {{ frozen.changed }} {{ frozen.failed | default(false) }}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    tmp = tmp_path_factory.mktemp("unsafe-writes")
    rustle = Path(sys.executable).parent / "rustle-deploy"
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        (work / "mounted").mkdir(parents=True)
        (work / "mounted" / "target").write_text("under the mount\n")
        (work / "source").write_text("mounted over it\n")
        (work / "frozen").mkdir()
        (work / "frozen" / "f").write_text("before\n")
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "inv.ini").write_text(f"h ansible_connection=local ansible_python_interpreter={sys.executable} "
                                      f"rustle_remote_dir={work / 'remote'}\n")
        args = ["-i", str(work / "inv.ini"), "-e", f"w={work}"]
        if tool == "ansible":
            argv, env = [str(ANSIBLE), str(work / "site.yml"), *args], ansible_env(work)
        else:
            argv = [str(rustle), str(work / "site.yml"), *args, "--run", "--output", "text"]
            env = {k: v for k, v in os.environ.items() if k not in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB")}
            env.update(HOME=str(work / "home"), ANSIBLE_CONFIG=str(work / "no-ansible.cfg"))
        script = (f"mount --bind {shlex.quote(str(work / 'source'))} {shlex.quote(str(work / 'mounted' / 'target'))}"
                  f" && exec {shlex.join(argv)}")
        subprocess.run(["chattr", "+i", str(work / "frozen")], check=True)
        try:
            proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env,
                                  cwd=work, timeout=600)
        finally:
            subprocess.run(["chattr", "-i", str(work / "frozen")], check=True)
        out[tool] = {"code": proc.returncode, "text": proc.stdout + proc.stderr,
                     "results": (work / "results.txt").read_text() if (work / "results.txt").exists() else None,
                     "source": (work / "source").read_text(), "under": (work / "mounted" / "target").read_text(),
                     "frozen": (work / "frozen" / "f").read_text(),
                     "frozen_mode": oct((work / "frozen" / "f").stat().st_mode & 0o7777),
                     "frozen_entries": sorted(os.listdir(work / "frozen"))}
    return out


def test_unsafe_writes_writes_in_place_where_ansible_core_does(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert ansible["results"].splitlines() == [
        "True True True", "True False", "True", "True True",
        "True Destination W/frozen not writable", "True False"]
    # written through the bind mount, in place; the file under it untouched
    assert ansible["source"] == "unsafe copy\na line\n" and ansible["under"] == "under the mount\n"
    assert ansible["frozen"] == "written in place\n" and ansible["frozen_mode"] == "0o640"
    assert ansible["frozen_entries"] == ["f"]
    for key in ("results", "source", "under", "frozen", "frozen_mode", "frozen_entries"):
        assert (key, rustle[key]) == (key, ansible[key]), rustle["text"]
