"""Unit tests of rustle_deploy.inventory: ranges, typing, precedence, patterns, resolve, errors.

The byte-for-byte comparison with ansible-core lives in test_inventory_ansible.py; these tests
pin behaviour with literal expectations and need no Ansible.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory import implicit_localhost, load_inventory
from rustle_deploy.inventory.ini import parse_value
from rustle_deploy.inventory.patterns import split_host_pattern
from rustle_deploy.inventory.ranges import RangeError, expand_hostpattern

DATA = Path(__file__).resolve().parents[1] / "data" / "inventories"


def write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    if mode is not None:
        path.chmod(mode)
    return path


@pytest.fixture
def yaml_inv(tmp_path: Path):
    return load_inventory(write(tmp_path / "inv.yml", """
        all:
          children:
            webservers:
              hosts:
                web[1:3]:
                web10:
            staging:
              hosts:
                web2:
                db1:
            databases:
              hosts:
                db[1:2]:
        """))


def names(hosts) -> list[str]:
    return [h.name for h in hosts]


# -- ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "hosts", "port"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"], None),
        ("db-[a:c]", ["db-a", "db-b", "db-c"], None),
        ("h[1:10:4]", ["h1", "h5", "h9"], None),
        ("n[a:b]-[1:2]", ["na-1", "na-2", "nb-1", "nb-2"], None),
        ("web[05:01]", [], None),
        ("host:2222", ["host"], 2222),
        ("r[1:2].x:22", ["r1.x", "r2.x"], 22),
        ("[::1]:2201", ["::1"], 2201),
        ("fe80::1", ["fe80::1"], None),
        ("10.0.0.[8:9]", ["10.0.0.8", "10.0.0.9"], None),
    ],
)
def test_ranges_expand_like_ansible(pattern: str, hosts: list[str], port: int | None) -> None:
    assert expand_hostpattern(pattern) == (hosts, port)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("redis[1,3,5]", "must be begin:end or begin:end:step"),
        ("w[01:1]", "equal-length"),
        ("w[1:]", "must specify an end value"),
        ("w[c:a]", "begin <= end"),
        ("[broken", "unbalanced"),
    ],
)
def test_bad_ranges_are_errors(pattern: str, message: str) -> None:
    with pytest.raises(RangeError, match=message.replace("[", r"\[")):
        expand_hostpattern(pattern)


# -- INI typing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("80", 80), ("0.5", 0.5), ("-1", -1), ("0x10", 16), ("1_000", 1000),
        ("True", True), ("true", "true"), ("yes", "yes"), ("None", None), ("017", "017"),
        ("'quoted'", "quoted"), ("[1, 'a']", [1, "a"]), ("(1, 2)", [1, 2]),
        ("{'a': {1, 2}}", {"a": [1, 2]}), ("0 2 * * *", "0 2 * * *"), ("1j", "1j"),
        ("...", "..."), ("a=b", "a=b"), ("'\\d'", "\\d"),
    ],
)
def test_ini_values_are_typed_like_ansible(text: str, value: object) -> None:
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_ini_host_line_and_vars_section_typing(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "hosts.ini", """
        [web]
        web1:2222 a=1 b="two words" c="80" d=yes e=True f="[1,2]"
        [web:vars]
        g = hello world
        h=42
        """))
    v = inv.hosts["web1"].vars
    assert v == {"ansible_port": 2222, "a": 1, "b": "two words", "c": 80, "d": "yes", "e": True,
                 "f": [1, 2], "g": "hello world", "h": 42}
    assert inv.hosts["web1"].port == 2222


# -- structure and precedence ------------------------------------------------------------


def test_groups_children_all_and_ungrouped(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "hosts.ini", """
        loose
        [a]
        h1
        [b:children]
        a
        [all]
        in_all
        """))
    assert list(inv.hosts) == ["loose", "h1", "in_all"]
    assert inv.groups["all"].children == ("ungrouped", "b")
    assert inv.groups["ungrouped"].hosts == ("loose", "in_all")
    assert inv.groups["b"].children == ("a",)
    assert inv.hosts["h1"].groups == ("all", "b", "a")
    assert inv.hosts["loose"].groups == ("all", "ungrouped")


def test_precedence_depth_priority_name_then_host() -> None:
    inv = load_inventory(DATA / "precedence" / "inventory.ini")
    h1, h2 = inv.hosts["h1"].vars, inv.hosts["h2"].vars
    # alpha and beta share the deepest depth: the later name (beta) wins over alpha
    assert h1["depth_test"] == "beta"
    # group_vars files beat every inline group var; group_vars/parent beats group_vars/all
    assert h1["who"] == "group_vars_parent"
    assert h1["file_vs_inline"] == "group_vars_all"
    assert h1["gv_order"] == "beta"
    # host inline vars beat group_vars files; host_vars files are applied last
    assert h2["who"] == "host_inline"
    assert h1["host_file"] == "h1"
    # ansible_group_priority is consumed, not a variable
    assert "ansible_group_priority" not in h1
    assert inv.groups["zeta"].priority == 0


def test_group_vars_and_host_vars_directories() -> None:
    inv = load_inventory(DATA / "group_host_vars" / "inventory.ini")
    web01 = inv.hosts["web01"]
    assert web01.vars["shared"] == "from_web"  # group_vars/web/ (dir) beats group_vars/all/
    assert web01.vars["deep"] == "from_nested_dir"
    assert "never" not in web01.vars  # the directory web/ wins over web.yml
    assert web01.vars["no_ext_file"] == "loaded"
    assert "ignored" not in web01.vars and "ignored_hidden" not in web01.vars
    assert web01.vars["inline"] == "from_host_vars"
    assert web01.address == "192.0.2.10"
    assert inv.hosts["db1"].port == 2222
    assert inv.hosts["db1"].vars["role"] == "database"
    assert "nobody" not in inv.hosts


def test_connection_variables_reach_host(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "inv.yml", """
        all:
          hosts:
            box:
              ansible_host: 10.1.1.1
              ansible_port: 2022
              ansible_user: deploy
              ansible_connection: ssh
              ansible_ssh_private_key_file: ~/.ssh/id_ed25519
              ansible_ssh_common_args: -o ProxyJump=bastion
              ansible_ssh_extra_args: -o ForwardAgent=yes
              ansible_python_interpreter: /usr/bin/python3
              ansible_become: true
              ansible_become_user: root
              ansible_become_method: sudo
            here:
              ansible_connection: local
        """))
    box = inv.hosts["box"]
    assert (box.address, box.port, box.user, box.connection) == ("10.1.1.1", 2022, "deploy", "ssh")
    assert box.vars["ansible_ssh_private_key_file"] == "~/.ssh/id_ed25519"
    assert box.vars["ansible_become"] is True
    assert inv.hosts["here"].is_local


def test_dynamic_script_without_meta_calls_host(tmp_path: Path) -> None:
    script = write(tmp_path / "inv.py", f"""
        #!{sys.executable}
        import json, sys
        if sys.argv[1] == "--list":
            print(json.dumps({{"g": {{"hosts": ["a", "b"]}}}}))
        else:
            print(json.dumps({{"who": sys.argv[2]}}))
        """, mode=0o755)
    inv = load_inventory(script)
    assert inv.hosts["a"].vars == {"who": "a"} and inv.hosts["b"].vars == {"who": "b"}
    assert any("_meta" in w for w in inv.warnings)


# -- patterns ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ["web1", "web2", "web3", "web10", "db1", "db2"]),
        ("all", ["web1", "web2", "web3", "web10", "db1", "db2"]),
        ("web*", ["web1", "web2", "web3", "web10"]),
        (r"~web\d$", ["web1", "web2", "web3"]),
        ("webservers:&staging", ["web2"]),
        ("all:!db1", ["web1", "web2", "web3", "web10", "db2"]),
        ("db2,web1", ["db2", "web1"]),
        ("databases:webservers", ["db1", "db2", "web1", "web2", "web3", "web10"]),
        ("!webservers", ["db1", "db2"]),
        ("webservers[0]", ["web1"]),
        ("webservers[1:2]", ["web2", "web3"]),
        ("webservers[-1]", ["web10"]),
        ("nothing-like-this", []),
        ("localhost", ["localhost"]),
    ],
)
def test_select_patterns(yaml_inv, pattern: str | None, expected: list[str]) -> None:
    assert names(yaml_inv.select(pattern)) == expected


def test_select_localhost_absent_is_implicit(yaml_inv) -> None:
    (local,) = yaml_inv.select("localhost")
    assert local.is_local and local.vars["ansible_python_interpreter"] == sys.executable
    assert "localhost" not in yaml_inv.to_ansible_list()["_meta"]["hostvars"]


def test_select_limit_file(yaml_inv, tmp_path: Path) -> None:
    limit = write(tmp_path / "limit.txt", "db2\nweb3\n")
    assert names(yaml_inv.select(f"@{limit}")) == ["db2", "web3"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("~web(", "invalid host pattern"), ("webservers[9]", "subscripted pattern"),
     ("@/nonexistent/limit", "cannot read limit file")],
)
def test_bad_patterns_are_errors(yaml_inv, pattern: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message) as info:
        yaml_inv.select(pattern)
    assert info.value.hint and str(info.value).startswith(yaml_inv.source)


def test_split_host_pattern() -> None:
    assert split_host_pattern("a, b[1] ,c[2:3]") == ["a", "b[1]", "c[2:3]"]
    assert split_host_pattern("web:&staging:!db1") == ["web", "&staging", "!db1"]
    assert split_host_pattern("web[1:3]") == ["web[1:3]"]
    assert split_host_pattern("fe80::1") == ["fe80::1"]


# -- resolve (plan hosts meet the inventory) ---------------------------------------------


def test_resolve_hosts_groups_dedup_and_order(yaml_inv) -> None:
    got = yaml_inv.resolve(["db1", "staging", "web1", "db1"])
    assert names(got) == ["db1", "web2", "web1"]


def test_resolve_unknown_lists_all_with_hint(yaml_inv) -> None:
    with pytest.raises(InventoryError) as info:
        yaml_inv.resolve(["web1", "wbe1", "ghost"], what="plan")
    err = info.value
    assert err.file == yaml_inv.source
    assert "wbe1" in err.message and "ghost" in err.message and "web1," not in err.message
    assert err.hint and "did you mean 'web1' for 'wbe1'" in err.hint


def test_resolve_localhost_without_inventory() -> None:
    inv = implicit_localhost()
    (local,) = inv.resolve(["localhost"])
    assert local.vars == {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    assert local.is_local
    assert inv.select("all") == []  # as in Ansible, the implicit localhost is not in 'all'
    with pytest.raises(InventoryError) as info:
        inv.resolve(["web1"])
    assert info.value.hint and "-i" in info.value.hint


def test_resolve_localhost_like_host_is_reused() -> None:
    inv = load_inventory(DATA / "localhost_like" / "inventory.ini")
    assert names(inv.resolve(["localhost", "::1"])) == ["localhost", "127.0.0.1"]


def test_implicit_localhost_gets_group_vars_all() -> None:
    inv = load_inventory(DATA / "group_host_vars" / "inventory.ini")
    (local,) = inv.resolve(["localhost"])
    assert local.vars["ntp"] == "pool.ntp.org" and local.vars["ansible_connection"] == "local"
    assert local.vars["inline_all"] == "from_group_vars_all"


# -- errors: file, line, hint ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("bad.ini", "[web]\nweb[1,2]\n", 2, "begin:end"),
        ("bad.ini", "[web]\nw1\n[all:children]\nweb\nmissing\n", 5, "undefined group 'missing'"),
        ("bad.ini", "[web:vars]\nx=1\n", 1, "undefined group 'web'"),
        ("bad.ini", "[web:other]\n", 1, "unknown type"),
        ("bad.ini", "[a]\nh1 novalue\n", 2, "key=value"),
        ("bad.ini", "[a]\nh1 x='unterminated\n", 2, "No closing quotation"),
        ("bad.ini", "[a:children]\nb\n[b:children]\na\n", 4, "recursive"),
        ("bad.ini", "[web\nhost\n", 1, "no closing"),
        ("bad.yml", "all:\n  hosts:\n    - a\n", 2, "requires a mapping"),
        ("bad.yml", "all:\n  hosts:\n    a: [1]\n", 3, "variables"),
        ("bad.yml", "all:\n  hosts: {a: 1\n", 3, ""),
        ("bad.yml", "all:\n  children:\n    g:\n      hosts:\n        42:\n", 5, "must be a string"),
    ],
)
def test_errors_name_file_line_and_hint(
    tmp_path: Path, name: str, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    err = info.value
    assert (err.file, err.line) == (str(path), line), str(err)
    assert str(err).startswith(f"{path}:{line}: ")
    assert fragment in err.message
    assert err.hint


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory") as info:
        load_inventory(tmp_path / "nope.ini")
    assert info.value.hint


def test_error_vars_file_not_a_mapping(tmp_path: Path) -> None:
    inv = write(tmp_path / "hosts.ini", "[web]\nw1\n")
    write(tmp_path / "group_vars" / "web.yml", "- a\n- b\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(inv)
    assert info.value.file == str(tmp_path / "group_vars" / "web.yml")
    assert "not a mapping" in info.value.message and info.value.hint


def test_error_vars_file_bad_yaml_has_line(tmp_path: Path) -> None:
    inv = write(tmp_path / "hosts.ini", "[web]\nw1\n")
    bad = write(tmp_path / "host_vars" / "w1.yml", "a: 1\nb: [unclosed\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(inv)
    assert info.value.file == str(bad) and info.value.line is not None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("import sys; sys.stderr.write('boom'); sys.exit(3)", "exited with code 3: boom"),
        ("print('not json')", "not JSON"),
        ("print('[1, 2]')", "not a JSON object"),
        ("import json; print(json.dumps({'g': {'hosts': 'h1'}}))", "not a list"),
    ],
)
def test_script_errors(tmp_path: Path, body: str, fragment: str) -> None:
    script = write(tmp_path / "inv.py", f"#!{sys.executable}\n{body}\n", mode=0o755)
    with pytest.raises(InventoryError, match=fragment) as info:
        load_inventory(script)
    assert info.value.file == str(script) and info.value.hint


def test_executable_ini_file_falls_back_to_ini(tmp_path: Path) -> None:
    path = write(tmp_path / "hosts", "[web]\nw1 a=1\n", mode=0o755)
    inv = load_inventory(path)
    assert inv.hosts["w1"].vars == {"a": 1}


def test_plugin_config_and_toml_are_refused_with_hints(tmp_path: Path) -> None:
    for path, fragment in [
        (write(tmp_path / "aws_ec2.yml", "plugin: amazon.aws.aws_ec2\n"), "plugin"),
        (write(tmp_path / "inv.toml", "[web.hosts]\n"), "TOML"),
    ]:
        with pytest.raises(InventoryError, match=fragment) as info:
            load_inventory(path)
        assert info.value.hint


def test_yaml_warnings_are_collected() -> None:
    inv = load_inventory(DATA / "yaml_edge" / "inventory.yaml")
    text = "\n".join(inv.warnings)
    assert "unexpected_key" in text and "listy" in text and "not_a_group" in text


def test_directory_source(tmp_path: Path) -> None:
    inv = load_inventory(DATA / "dir_source" / "inventory")
    assert set(inv.hosts) == {"w1", "w2", "w3", "d1", "d2"}
    assert inv.hosts["w3"].vars == {"web_from_dir_group_vars": 1}
    assert os.path.isdir(inv.source)
