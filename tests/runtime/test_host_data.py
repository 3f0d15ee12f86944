"""Host data is data (issue 11): what comes from the host is never a template or an expression.

Registered results, gathered facts, ``set_fact`` values, ``slurp`` contents and lookups that
read the host (``file``, ``pipe``, ``env``) are printed, copied and compared literally, as
ansible-core does; a ``{{ ... }}`` inside them never runs. Each probe would create a marker
file if it ran. The Jinja2 environment is a sandbox: no walking into Python's internals.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import task


def probe(tmp_path: Path, name: str) -> tuple[Path, str, str]:
    """(marker, template payload, expression payload) for a probe called ``name``."""
    mark = tmp_path / f"PWNED-{name}"
    expression = f"lookup('pipe', 'touch {mark}')"
    return mark, "{{ " + expression + " }}", expression


def test_registered_output_is_printed_copied_and_compared_never_run(apply, tmp_path):
    mark, payload, bare = probe(tmp_path, "reg")
    (tmp_path / "payload.txt").write_text(payload + "\n")
    (tmp_path / "bare.txt").write_text(bare + "\n")
    r = apply([
        task("command", {"_raw_params": f"cat {tmp_path}/payload.txt"}, name="read", register="r"),
        task("debug", {"msg": "{{ r.stdout }}"}, name="msg"),
        task("debug", {"msg": "got {{ r.stdout | trim }}!"}, name="msg in text"),
        task("copy", {"content": "{{ r.stdout }}", "dest": str(tmp_path / "copied")}, name="copy"),
        task("debug", {"msg": "compared"}, name="when", when=["r.stdout != ''"]),
        task("debug", {"msg": "{{ item }}"}, name="loop", loop="{{ r.stdout_lines }}"),
        task("command", {"_raw_params": f"cat {tmp_path}/payload.txt"}, name="changed_when",
             register="again", changed_when=["again.stdout != ''"]),
        task("command", {"_raw_params": f"cat {tmp_path}/bare.txt"}, name="read bare", register="b"),
        task("debug", {"msg": "ran"}, name="templated when", when=["{{ b.stdout }}"],
             ignore_errors=True),
        task("assert", {"that": "{{ b.stdout }}"}, name="templated assert", ignore_errors=True),
        task("debug", {"var": "{{ b.stdout }}"}, name="templated var", ignore_errors=True),
    ])
    assert not mark.exists(), "a registered result was run as a template"
    assert r.result("msg")["msg"] == payload
    assert r.result("msg in text")["msg"] == f"got {payload}!"
    assert (tmp_path / "copied").read_text() == payload
    assert r.result("when")["status"] == "ok"
    assert [i["msg"] for i in r.result("loop")["results"]] == [payload]
    assert r.result("changed_when")["status"] == "changed"
    for name in ("templated when", "templated assert"):
        res = r.result(name)
        assert res["status"] == "failed" and res["msg"].endswith("Encountered untrusted template or expression."), res
    assert r.result("templated var")["status"] == "failed"
    assert "untrusted" in r.result("templated var")["msg"]
    assert r.rc == 0, r.stdout + r.stderr


def test_facts_from_host_data_are_never_templates(apply, tmp_path, monkeypatch):
    mark, payload, bare = probe(tmp_path, "fact")
    (tmp_path / "payload.txt").write_text(payload + "\n")
    (tmp_path / "bare.txt").write_text(bare + "\n")
    monkeypatch.setenv("RUSTLE_PROBE", payload)  # the host's environment: ansible_env
    r = apply([
        task("command", {"_raw_params": f"cat {tmp_path}/payload.txt"}, name="read", register="r"),
        task("set_fact", {"f": "{{ r.stdout }}", "g": "pre {{ r.stdout }}", "h": "{{ r.stdout | trim }}",
                          "cacheable": True}, name="set"),
        task("debug", {"msg": "{{ f }}|{{ g }}|{{ h }}"}, name="facts"),
        task("debug", {"msg": "compared"}, name="when", when=["g != ''"]),
        task("debug", {"msg": "{{ ansible_env.RUSTLE_PROBE }}"}, name="gathered"),
        task("debug", {"msg": "{{ ansible_facts.env.RUSTLE_PROBE }}"}, name="ansible_facts"),
        task("command", {"_raw_params": f"cat {tmp_path}/bare.txt"}, name="read bare", register="b"),
        task("set_fact", {"e": "{{ b.stdout }}"}, name="set bare"),
        task("debug", {"msg": "ran"}, name="bare fact condition", when=["e"], ignore_errors=True),
    ])
    assert not mark.exists(), "a fact was run as a template"
    assert r.result("facts")["msg"] == f"{payload}|pre {payload}|{payload}"
    assert r.result("when")["status"] == "ok"
    assert r.result("gathered")["msg"] == payload
    assert r.result("ansible_facts")["msg"] == payload
    res = r.result("bare fact condition")  # data, never an expression; and 2.19 wants a boolean
    assert res["status"] == "failed" and "derived from value of type 'str'" in res["msg"], res
    assert r.rc == 0, r.stdout + r.stderr


def test_file_contents_from_slurp_and_lookups_are_never_templates(apply, tmp_path):
    mark, payload, bare = probe(tmp_path, "file")
    src = tmp_path / "payload.txt"
    src.write_text(payload + "\n")
    (tmp_path / "bare.txt").write_text(bare + "\n")
    read = f"lookup('file', '{src}')"
    read_bare = f"lookup('file', '{tmp_path}/bare.txt')"
    r = apply([
        task("slurp", {"src": str(src)}, name="slurp", register="s"),
        task("debug", {"msg": "{{ s.content | b64decode }}"}, name="slurped"),
        task("set_fact", {"content": "{{ s.content | b64decode }}"}, name="set slurped"),
        task("debug", {"msg": "{{ content }}"}, name="slurped fact"),
        task("debug", {"msg": "{{ " + read + " }}"}, name="lookup"),
        # (pipe runs on the controller: test_controller_lookups_ansible covers its output)
        task("set_fact", {"looked": "{{ " + read + " }}", "again": "{{ " + read + " }}"}, name="set looked"),
        task("debug", {"msg": "{{ looked }} {{ again }}"}, name="looked fact"),
        task("debug", {"msg": "ran"}, name="lookup condition", ignore_errors=True,
             when=["{{ " + read_bare + " }}"]),
        task("debug", {"msg": "ran"}, name="filtered condition", ignore_errors=True,
             when=["{{ " + read_bare + " | trim }}"]),
    ])
    assert not mark.exists(), "file contents were run as a template"
    assert r.result("slurp")["status"] == "ok"
    assert r.result("slurped")["msg"] == payload + "\n"
    assert r.result("slurped fact")["msg"] == payload + "\n"
    assert r.result("lookup")["msg"] == payload
    assert r.result("looked fact")["msg"] == f"{payload} {payload}"
    for name in ("lookup condition", "filtered condition"):
        res = r.result(name)
        assert res["status"] == "failed" and res["msg"].endswith("Encountered untrusted template or expression."), res
    assert r.rc == 0, r.stdout + r.stderr


def test_trusted_templates_still_render_and_conditions_still_evaluate(apply):
    """The playbook's own values keep Ansible's behaviour: nested variables render, a variable
    holding an expression is evaluated by `when: "{{ var }}"`; a bare `when: var` holding a
    string fails, as in ansible-core 2.19 (it is not a boolean)."""
    r = apply([
        task("debug", {"msg": "{{ outer }}"}, name="nested"),
        task("debug", {"msg": "ran"}, name="expression var", when=["{{ cond }}"]),
        task("debug", {"msg": "ran"}, name="bare expression var", when=["cond"], ignore_errors=True),
        task("set_fact", {"word": "{{ 'yes' }}"}, name="set"),
        task("debug", {"msg": "ran"}, name="word fact", when=["word | bool"]),
    ], play_vars={"inner": "x", "outer": "{{ inner }}-{{ inner }}", "cond": "inner == 'y'"})
    assert r.result("nested")["msg"] == "x-x"
    assert r.result("expression var")["status"] == "skipped"
    assert r.result("bare expression var")["status"] == "failed"
    assert r.result("word fact")["status"] == "ok"


def test_jinja2_is_sandboxed(apply):
    r = apply([
        task("debug", {"msg": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, name="subclasses",
             ignore_errors=True),
        task("debug", {"msg": "{{ lookup.__globals__ }}"}, name="globals", ignore_errors=True),
        task("debug", {"msg": "{{ x.__class__.__init__ }}"}, name="via a variable", ignore_errors=True),
        task("debug", {"msg": "{{ x.upper() }}"}, name="methods still work"),
    ], play_vars={"x": "text"})
    for name in ("subclasses", "globals", "via a variable"):
        res = r.result(name)
        assert res["status"] == "failed" and "unsafe" in res["msg"], res
        assert "subclass" not in res["msg"] and "<class" not in res["msg"]
    assert r.result("methods still work")["msg"] == "TEXT"
