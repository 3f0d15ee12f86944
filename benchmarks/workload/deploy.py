"""The benchmark workload for pyinfra: the same 12 tasks as site.yml, under host.data.bench_root.

pyinfra decides most changes from facts gathered before it executes anything, so the
tasks that need results of earlier tasks (stat + register, the shell pipeline that must not
count as a change, the assert) run as `python.call` callbacks at execution time, which is
pyinfra's idiom for that.  The one-time command is guarded by a `File` fact (pyinfra has no
`creates`).
"""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, python, server

HERE = Path(__file__).resolve().parent
root = host.data.bench_root
app = f"{root}/app"
registered: dict[str, object] = {}

for sub, mode in ((".", "755"), ("conf", "750"), ("data", "700")):
    files.directory(name=f"Directory app/{sub}", path=f"{app}/{sub}".rstrip("/."), mode=mode)

files.put(name="Copy a file from the controller", src=str(HERE / "files/app.conf"),
          dest=f"{app}/conf/app.conf", mode="644")

files.template(name="Template with host variables", src=str(HERE / "templates/motd.j2"),
               dest=f"{app}/motd", mode="644", inventory_hostname=host.name,
               bench_role=host.data.bench_role, bench_root=root)

files.put(name="File with inline content", src=StringIO(f"managed inline\nhost={host.name}\n"),
          dest=f"{app}/conf/inline.txt", mode="600")

files.line(name="lineinfile creates a file", path=f"{app}/conf/settings.ini",
           line=f"owner = {host.name}")

backup = f"{app}/data/legacy.cfg.orig"
if not host.get_fact(File, path=backup):
    server.shell(name="One-time backup of the legacy config",
                 commands=[f"cp {root}/legacy.cfg {backup}"])

files.line(name="lineinfile replaces a line", path=f"{root}/legacy.cfg",
           line=r"^workers\s*=.*$", replace="workers = 4")

files.link(name="Symlink", path=f"{app}/current.conf", target=f"{app}/conf/app.conf")


def stat_app_conf() -> None:
    ok, out = host.run_shell_command(f"stat -c %a {app}/conf/app.conf")
    registered["app_conf_mode"] = out.stdout.strip() if ok else None


def count_settings() -> None:
    _, out = host.run_shell_command(f"grep -v '^#' {app}/conf/app.conf | grep -c ' = '")
    registered["settings_count"] = out.stdout.strip()


def check_registered() -> None:
    assert registered["app_conf_mode"] == "644", registered
    assert int(str(registered["settings_count"])) == 4, registered


python.call(name="Stat the copied file", function=stat_app_conf)
python.call(name="Count settings with a shell pipeline", function=count_settings)

files.file(name="Remove a stale file", path=f"{root}/stale.txt", present=False)

python.call(name="Assert on the registered results", function=check_registered)
