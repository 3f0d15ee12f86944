"""Behaviours found missing by review: keyword expressions, handler ``listen``, chained
comparisons, and template syntax options that cannot be honoured."""

from __future__ import annotations

from .conftest import task


def test_task_keywords_given_as_expressions_are_evaluated(apply, tmp_path):
    r = apply([
        task("fail", {"msg": "boom"}, name="not ignored", ignore_errors="{{ flag }}"),
    ], play_vars={"flag": False})
    assert r.rc == 2 and r.result("not ignored")["status"] == "failed"
    r = apply([
        task("fail", {"msg": "boom"}, name="ignored", ignore_errors="{{ not flag }}"),
        task("command", {"_raw_params": "true"}, name="real run", check_mode="{{ flag }}"),
        task("command", {"_raw_params": "true"}, name="retried", retries="{{ 1 + 1 }}", delay="0",
             until=["true"]),
        task("command", {"_raw_params": "true"}, name="yes word", ignore_errors="yes"),
    ], None, "--check", play_vars={"flag": False})
    assert r.rc == 0, r.stdout
    assert r.result("ignored")["ignored"] is True
    assert r.result("real run")["status"] == "changed"  # check_mode false beats --check
    r = apply([task("command", {"_raw_params": "true"}, name="bad", timeout="{{ nope }}")])
    assert r.rc == 2 and "could not be evaluated" in r.result("bad")["msg"]


def test_handlers_run_for_a_topic_they_listen_to(apply, tmp_path):
    log = tmp_path / "log"
    r = apply(
        [task("command", {"_raw_params": "true"}, name="t", notify=["restart stack"])],
        [task("shell", {"_raw_params": f"echo web >> {log}"}, name="restart web", listen=["restart stack"]),
         task("shell", {"_raw_params": f"echo db >> {log}"}, name="restart db", listen="restart stack")],
    )
    assert r.rc == 0, r.stdout
    assert log.read_text().split() == ["web", "db"]


def test_chained_comparison_has_jinja2_semantics(apply):
    r = apply([
        task("debug", {"msg": "in range"}, name="chained", when=["1 < x < 3"]),
    ], play_vars={"x": 5})
    assert r.result("chained")["status"] == "skipped"


def test_template_syntax_options_are_honoured_not_ignored(apply, tmp_path):
    src = b"a\n  {% if true %}\n  b\n  {% endif %}\n"
    import hashlib

    digest = hashlib.sha256(src).hexdigest()
    r = apply([
        task("template", {"src": "t.j2", "dest": str(tmp_path / "out"), "lstrip_blocks": True},
             name="t", files={"t.j2": digest}),
    ], files={digest: src})
    assert r.rc == 0, r.stdout
    # lstrip_blocks strips the blanks before a block tag (Ansible's trim_blocks stays on)
    assert (tmp_path / "out").read_text() == "a\n  b\n"
