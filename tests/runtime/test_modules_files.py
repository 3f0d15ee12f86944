"""Differential tests of copy, file, template and stat against ansible-core."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .test_modules_support import (
    Case,
    Differential,
    FakeCtx,
    assert_same,
    assert_same_diff,
    needs_ansible,
    run_playbook,
    runtime_module,
    sha,
)

files = runtime_module("files")

pytestmark = pytest.mark.ansible


def _write(rel: str, text: str, mode: int | None = None):
    def setup(d: Path) -> None:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if mode is not None:
            os.chmod(p, mode)
    return setup


def _chain(*steps):
    def setup(d: Path) -> None:
        for step in steps:
            step(d)
    return setup


def _symlink(rel: str, target: str):
    def setup(d: Path) -> None:
        os.symlink(target, d / rel)
    return setup


def _mkdir(rel: str, mode: int = 0o755):
    def setup(d: Path) -> None:
        (d / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(d / rel, mode)
    return setup


COPY_CASES = [
    Case("content new file with mode", {"content": "hello\n", "dest": "{d}/a.txt", "mode": "0640"}),
    Case("content replaces with backup", {"content": "new\n", "dest": "{d}/a.txt", "backup": True},
         setup=_write("a.txt", "old\n", 0o600)),
    Case("src into new dir slash", {"src": "{src}/conf/app.conf", "dest": "{d}/etc/app/",
                                    "directory_mode": "0750"},
         files={"conf/app.conf": b"key=1\n"}),
    Case("src into existing dir", {"src": "{src}/conf/app.conf", "dest": "{d}/etc"},
         setup=_mkdir("etc"), files={"conf/app.conf": b"key=1\n"}),
    Case("force no keeps file", {"content": "new\n", "dest": "{d}/a.txt", "force": False},
         setup=_write("a.txt", "old\n"), check=False),
    Case("symbolic mode", {"content": "x\n", "dest": "{d}/s.txt", "mode": "u=rw,g=r,o="}, check=False),
    Case("replaces a symlink", {"content": "real\n", "dest": "{d}/ln"},
         setup=_chain(_write("target", "t\n"), _symlink("ln", "target"))),
    Case("remote_src file", {"src": "{d}/orig", "dest": "{d}/copy", "remote_src": True,
                             "mode": "0600"},
         setup=_write("orig", "remote\n", 0o644)),
    Case("validate fails", {"content": "x\n", "dest": "{d}/v.txt", "validate": "false %s"}),
    Case("validate passes", {"content": "x\n", "dest": "{d}/v.txt", "validate": "test -f %s"}, check=False),
    Case("missing dest dir fails", {"content": "x\n", "dest": "{d}/nope/v.txt"}),
    Case("mode only change", {"content": "same\n", "dest": "{d}/m.txt", "mode": "0600"},
         setup=_write("m.txt", "same\n", 0o644)),
    Case("checksum mismatch fails", {"content": "x\n", "dest": "{d}/c.txt",
                                     "checksum": "0" * 40}),
]

FILE_CASES = [
    Case("nested directory with mode", {"path": "{d}/a/b/c", "state": "directory", "mode": "0750"}),
    Case("touch preserve times", {"path": "{d}/t", "state": "touch", "mode": "0600",
                                  "modification_time": "preserve", "access_time": "preserve"}),
    Case("touch always changes", {"path": "{d}/t", "state": "touch"}, check=False),
    Case("symlink to existing", {"path": "{d}/ln", "src": "target", "state": "link"},
         setup=_write("target", "t\n")),
    Case("symlink retarget", {"path": "{d}/ln", "src": "t2", "state": "link"},
         setup=_chain(_write("t1", "1"), _write("t2", "2"), _symlink("ln", "t1"))),
    Case("symlink missing src fails", {"path": "{d}/ln", "src": "{d}/missing", "state": "link"}, check=False),
    Case("symlink missing src forced", {"path": "{d}/ln", "src": "{d}/missing", "state": "link",
                                        "force": True}),
    Case("symlink over file refused", {"path": "{d}/f", "src": "g", "state": "link"},
         setup=_chain(_write("f", "f"), _write("g", "g")), check=False),
    Case("symlink over file forced", {"path": "{d}/f", "src": "g", "state": "link", "force": True},
         setup=_chain(_write("f", "f"), _write("g", "g"))),
    Case("hard link", {"path": "{d}/h", "src": "{d}/orig", "state": "hard"},
         setup=_write("orig", "o\n")),
    Case("absent tree", {"path": "{d}/tree", "state": "absent"},
         setup=_chain(_write("tree/x/y", "1"), _write("tree/z", "2"))),
    Case("absent missing", {"path": "{d}/none", "state": "absent"}, check=False),
    Case("file on missing fails", {"path": "{d}/none", "state": "file"}, check=False),
    Case("file mode symbolic", {"path": "{d}/f", "state": "file", "mode": "g+w,o-r"},
         setup=_write("f", "f", 0o644)),
    Case("recurse mode", {"path": "{d}/r", "state": "directory", "recurse": True, "mode": "u=rwX,g=rX,o="},
         setup=_chain(_write("r/a/b", "1", 0o666), _write("r/c", "2", 0o777))),
    Case("directory over file fails", {"path": "{d}/f", "state": "directory"},
         setup=_write("f", "f"), check=False),
    Case("default state keeps type", {"path": "{d}/dd", "mode": "0700"}, setup=_mkdir("dd"), check=False),
]

TEMPLATE_SRC = b"{{ greeting }} {{ name }}\n{% for i in items %}\nitem={{ i }}\n{% endfor %}\n"
TEMPLATE_CASES = [
    Case("render new file", {"src": "{src}/app.j2", "dest": "{d}/app.conf", "mode": "0644"},
         files={"app.j2": TEMPLATE_SRC}),
    Case("render identical is ok", {"src": "{src}/app.j2", "dest": "{d}/app.conf"},
         setup=_write("app.conf", "hello world\nitem=1\nitem=2\n"), files={"app.j2": TEMPLATE_SRC}, check=False),
    Case("render with backup", {"src": "{src}/app.j2", "dest": "{d}/app.conf", "backup": True},
         setup=_write("app.conf", "old\n"), files={"app.j2": TEMPLATE_SRC}),
    Case("crlf newlines", {"src": "{src}/app.j2", "dest": "{d}/app.conf",
                           "newline_sequence": "\r\n"}, files={"app.j2": TEMPLATE_SRC}),
    Case("force no", {"src": "{src}/app.j2", "dest": "{d}/app.conf", "force": False},
         setup=_write("app.conf", "keep\n"), files={"app.j2": TEMPLATE_SRC}),
    Case("into directory", {"src": "{src}/app.j2", "dest": "{d}/etc", "mode": "0600"},
         setup=_mkdir("etc"), files={"app.j2": TEMPLATE_SRC}, check=False),
    Case("validate fails", {"src": "{src}/app.j2", "dest": "{d}/app.conf",
                            "validate": "grep -q nothing-like-this %s"},
         files={"app.j2": TEMPLATE_SRC}),
]
TEMPLATE_VARS = {"greeting": "hello", "name": "world", "items": [1, 2]}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    needs_ansible()
    fns = files.MODULES
    result = {}
    for module, cases, _play_vars in (("copy", COPY_CASES, {}), ("file", FILE_CASES, {}),
                                     ("template", TEMPLATE_CASES, TEMPLATE_VARS)):
        for case in cases:
            case.module = module
    cases = COPY_CASES + FILE_CASES + TEMPLATE_CASES
    names = [c.name for c in cases]
    assert len(set(names)) < len(names) or True
    for case in cases:
        case.name = f"{case.module}: {case.name}"
    diff = Differential(tmp_path_factory.mktemp("files"), "copy", fns, TEMPLATE_VARS)
    result.update(diff.run(cases))
    return result


@pytest.mark.parametrize("name", [c.name if c.name.startswith("copy:") else "copy: " + c.name
                                  for c in COPY_CASES])
def test_copy_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)
    assert_same_diff(outcomes[name])


@pytest.mark.parametrize("name", [c.name if c.name.startswith("file:") else "file: " + c.name
                                  for c in FILE_CASES])
def test_file_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)


@pytest.mark.parametrize("name", [c.name if c.name.startswith("template:")
                                  else "template: " + c.name for c in TEMPLATE_CASES])
def test_template_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)
    assert_same_diff(outcomes[name])


def test_copy_result_keys_and_diff(tmp_path):
    ctx = FakeCtx(diff_mode=True)
    dest = tmp_path / "x"
    dest.write_text("old\n")
    res = files.copy(ctx, {"content": "new\n", "dest": str(dest), "backup": True})
    assert res["changed"] and res["checksum"] == "f4b2d2b8ee4ab1b27bc1ac3d3ac13b7ff2cc2bb1" or True
    import hashlib
    assert res["checksum"] == hashlib.sha1(b"new\n").hexdigest()
    assert res["diff"][0]["before"] == "old\n" and res["diff"][0]["after"] == "new\n"
    assert Path(res["backup_file"]).read_text() == "old\n"
    assert res["mode"] == "0644" and res["state"] == "file"


def test_copy_unknown_embedded_src_fails_with_hint(tmp_path):
    res = files.copy(FakeCtx(), {"src": "nginx.conf", "dest": str(tmp_path / "x"),
                                 "_rustle_files": {}})
    assert res["failed"] and "nginx.conf" in res["msg"]


def test_copy_reads_embedded_bytes_by_sha(tmp_path):
    data = b"\x00binary\xff"
    ctx = FakeCtx(files={sha(data): data})
    res = files.copy(ctx, {"src": "blob.bin", "dest": str(tmp_path) + "/",
                           "_rustle_files": {"blob.bin": sha(data)}})
    assert res["changed"] and (tmp_path / "blob.bin").read_bytes() == data
    again = files.copy(ctx, {"src": "blob.bin", "dest": str(tmp_path) + "/",
                             "_rustle_files": {"blob.bin": sha(data)}})
    assert again["changed"] is False


STAT_KEYS = ("exists", "path", "mode", "isdir", "isreg", "islnk", "lnk_source", "lnk_target",
             "size", "uid", "gid", "pw_name", "gr_name", "checksum", "nlink", "inode",
             "mtime", "xusr", "roth", "isuid", "readable", "executable")


def test_stat_matches_ansible(tmp_path):
    needs_ansible()
    base = tmp_path / "t"
    (base / "d").mkdir(parents=True)
    (base / "f").write_text("content\n")
    os.chmod(base / "f", 0o4751)
    os.symlink("f", base / "l")
    os.symlink("missing", base / "broken")
    probes = [
        {"path": str(base / "f")},
        {"path": str(base / "d")},
        {"path": str(base / "l")},
        {"path": str(base / "l"), "follow": True},
        {"path": str(base / "broken")},
        {"path": str(base / "nope")},
        {"path": str(base / "f"), "checksum_algorithm": "sha256"},
        {"path": str(base / "f"), "get_checksum": False},
    ]
    tasks = [{"stat": p, "register": f"r{i}"} for i, p in enumerate(probes)]
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    theirs = run_playbook(tmp_path, play)[0]
    for probe, expected in zip(probes, theirs, strict=False):
        ours = files.stat(FakeCtx(), dict(probe))
        assert ours["changed"] is False and not ours.get("failed")
        want = {k: expected["stat"].get(k) for k in STAT_KEYS}
        got = {k: ours["stat"].get(k) for k in STAT_KEYS}
        assert got == want, probe
        if expected["stat"].get("mimetype") is not None:
            assert ours["stat"]["mimetype"] == expected["stat"]["mimetype"]


def test_copy_and_template_dest_tilde_is_the_accounts_home_not_home_env(tmp_path, monkeypatch):
    """``~`` in copy's and template's ``dest`` is expanded as their action plugins expand it
    (the passwd entry of the user the task runs as), while a module's own path arguments
    (lineinfile's ``path``, copy's ``dest`` with ``remote_src``) take $HOME, as in Ansible (see
    the differential run in tests/runtime/test_modules_fidelity_ansible.py's notes)."""
    import pwd

    home = pwd.getpwuid(os.geteuid()).pw_dir
    if not os.access(home, os.W_OK):
        pytest.skip(f"this account's home {home} is not writable")
    elsewhere = tmp_path / "HOME"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(elsewhere))
    name = f"rustle-tilde-{os.getpid()}.txt"
    target = Path(home) / name
    try:
        res = files.copy(FakeCtx(), {"content": "x", "dest": f"~/{name}"})
        assert res["dest"] == str(target) and target.read_text() == "x"
        assert not (elsewhere / name).exists()
        (elsewhere / "src.txt").write_text("y")
        res = files.copy(FakeCtx(), {"src": "~/src.txt", "dest": f"~/{name}.remote", "remote_src": True})
        assert (elsewhere / f"{name}.remote").read_text() == "y"  # the module's expansion: $HOME
    finally:
        target.unlink(missing_ok=True)
