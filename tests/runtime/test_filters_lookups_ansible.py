"""Filters, lookups and loop variables against ansible-core (issue 14's list)."""

from __future__ import annotations

import pytest

from .oracle import compare_plays, fields

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

TASKS = [
    {"name": "now is a datetime", "debug": {"msg": "{{ now().year > 2000 and (now(fmt='%Y') | int) > 2000 }}"}},
    {"name": "now utc", "debug": {"msg": "{{ now(utc=True).year > 2000 }}"}},
    {"name": "lookup list", "debug": {"msg": "{{ lookup('list', [1, 2, 3]) }}"}},
    {"name": "query list", "debug": {"msg": "{{ query('list', 'a', 'b') }}"}},
    {"name": "lookup items", "debug": {"msg": "{{ lookup('items', [1, [2, 3]], wantlist=True) }}"}},
    {"name": "lookup indexed_items", "debug": {"msg": "{{ query('indexed_items', ['a', 'b']) }}"}},
    {"name": "lookup dict", "debug": {"msg": "{{ query('dict', {'k': 1, 'j': 2}) }}"}},
    {"name": "lookup together", "debug": {"msg": "{{ query('together', [1, 2], ['a']) }}"}},
    {"name": "lookup nested", "debug": {"msg": "{{ query('nested', [1, 2], ['a', 'b']) }}"}},
    {"name": "lookup sequence", "debug": {"msg": "{{ query('sequence', 'start=1 end=9 stride=3 format=n%02d') }}"}},
    {"name": "lookup sequence short", "debug": {"msg": "{{ query('sequence', '4-6') }}"}},
    {"name": "lookup subelements", "debug": {"msg": "{{ query('subelements', users, 'keys') }}"}},
    {"name": "lookup subelements bad flags", "debug": {"msg": "{{ query('subelements', users, 'keys', 'x') }}"},
     "ignore_errors": True},
    {"name": "lookup vars", "debug": {"msg": "{{ lookup('vars', 'who') }}"}},
    {"name": "lookup vars default", "debug": {"msg": "{{ lookup('vars', 'nope') | default('dflt') }}"}},
    {"name": "lookup varnames", "debug": {"msg": "{{ query('varnames', '^wh') }}"}},
    {"name": "lookup file in files/", "debug": {"msg": "{{ lookup('file', 'data1.txt') }}"}},
    {"name": "lookup file names and options", "debug": {"msg": "{{ q('file', 'data1.txt', 'data2.txt', lstrip=True) }}"}},
    {"name": "lookup fqcn sequence", "debug": {"msg": "{{ query('ansible.builtin.sequence', count=3, start=10) }}"}},
    {"name": "sequence bad value", "debug": {"msg": "{{ item }}"}, "loop": "{{ query('sequence', 'start=A end=3') }}",
     "ignore_errors": True},
    {"name": "sequence bad simple end", "debug": {"msg": "{{ item }}"}, "loop": "{{ query('sequence', '1-B/2') }}",
     "ignore_errors": True},
    {"name": "sequence unknown option", "debug": {"msg": "{{ item }}"},
     "loop": "{{ query('sequence', 'start=1 junk=3') }}", "ignore_errors": True},
    {"name": "varnames bad pattern", "debug": {"msg": "{{ lookup('varnames', '*') }}"}, "ignore_errors": True},
    {"name": "template writing nothing is None", "debug": {"msg": "{{ lookup('template', 'none.j2') is none }}"}},
    {"name": "type_debug", "debug": {"msg": "{{ [[1] | type_debug, {} | type_debug, 'a' | type_debug, 1 | type_debug] }}"}},
    # a backslash in a string literal of a YAML-written template stands for itself; not in a condition
    {"name": "backslash group", "debug": {"msg": "{{ 'PUT x TO /t/' | regex_search('TO (/.*?/)', '\\1') }}"}},
    {"name": "backslash literal", "debug": {"msg": "{{ ['a\\nb' | length, \"c\\td\" | length] }} \\n"}},
    {"name": "backslash in when", "debug": {"msg": "newline"}, "when": "'a\\nb' | length == 3"},
    {"name": "urlsplit", "debug": {"msg": "{{ ['http://u:p@a.b:8/c?d=1#x' | urlsplit, 'http://a.b/c' | urlsplit('hostname')] }}"}},
    {"name": "urlsplit unknown part", "debug": {"msg": "{{ 'http://a.b' | urlsplit('nope') }}"}, "ignore_errors": True},
    {"name": "comment", "debug": {"msg": "{{ ['a\nb' | comment, 'x' | comment('cblock'), 'x\n\ny' | comment('xml'), 'x' | comment('c', prefix_count=2, postfix='//', decoration='-> '), 'x' | comment(beginning='{', end='}', newline='\r\n')] }}"}},
    {"name": "comment bad style", "debug": {"msg": "{{ 'x' | comment('nope') }}"}, "ignore_errors": True},
    {"name": "uri tests", "debug": {"msg": "{{ ['junk' is uri, 'junk' is uri(['http']), 'file://x' is url, 'a:b' is url, 'urn:a:b' is urn] }}"}},
    # a module's facts (not prefixed ansible_) are variables too; getent runs through the bridge
    {"name": "getent", "getent": {"database": "passwd", "key": "root"}},
    {"name": "module facts are variables", "debug": {"msg": "{{ getent_passwd.root | length }} {{ ansible_facts.getent_passwd.root[4] }}"}},
    {"name": "lookup env", "debug": {"msg": "{{ lookup('env', 'RUSTLE_NO_SUCH_VAR', default='dflt') }}"}},
    {"name": "lookup errors ignore", "debug": {"msg": "{{ lookup('file', 'nope.txt', errors='ignore') is none }}"}},
    # ansible's unique: a list (not Jinja2's generator), case-insensitive unless told, dicts kept once
    {"name": "unique compared", "debug": {"msg": "{{ ['hi', 'hi'] | unique == ['hi'] }}"}},
    {"name": "unique case", "debug": {"msg": "{{ [['a', 'A', 'b'] | unique, ['a', 'A'] | unique(case_sensitive=true)] }}"}},
    {"name": "unique dicts and attribute", "debug": {"msg": "{{ [[{'a': 1}, {'a': 1}, {'a': 2}] | unique, [{'n': 'x'}, {'n': 'X'}] | unique(attribute='n')] }}"}},
    {"name": "zip", "debug": {"msg": "{{ [1, 2, 3] | zip(['a', 'b']) | list }}"}},
    {"name": "zip_longest", "debug": {"msg": "{{ [1, 2] | zip_longest(['a'], fillvalue='-') | list }}"}},
    {"name": "random int", "debug": {"msg": "{{ (100000 | random) < 100000 }}"}},
    {"name": "random seed list", "debug": {"msg": "{{ [1, 2, 3] | random(seed='x') in [1, 2, 3] }}"}},
    # passlib's strings (the oracle's) computed on the host (crypt, or SHA-crypt in Python)
    {"name": "password_hash", "debug": {"msg": "{{ ['pw' | password_hash('sha512', salt='abcdefgh', rounds=5000), 'pw' | password_hash('sha256', 'xyz', rounds=6000), 'pw' | password_hash('md5', salt='12345678')] }}"}},
    {"name": "password_hash default rounds", "debug": {"msg": "{{ 'pw' | password_hash(salt='s1') }}"}},
    {"name": "password_hash random salt", "debug": {"msg": "{{ ('pw' | password_hash('sha512'))[:17] }}"}},
    {"name": "password_hash unknown", "debug": {"msg": "{{ 'pw' | password_hash('nope') }}"}, "ignore_errors": True},
    {"name": "math", "debug": {"msg": "{{ [8 | log(2), 2 | pow(3), 16 | root, 1000 | log(10)] }}"}},
    {"name": "product", "debug": {"msg": "{{ [1, 2] | product(['a']) | list }}"}},
    {"name": "combinations", "debug": {"msg": "{{ [1, 2, 3] | combinations(2) | list }}"}},
    {"name": "permutations", "debug": {"msg": "{{ [1, 2, 3] | permutations(2) | list }}"}},
    {"name": "to_uuid", "debug": {"msg": "{{ 'rustle' | to_uuid }}"}},
    {"name": "extract", "debug": {"msg": "{{ ['a', 'b'] | map('extract', {'a': 1, 'b': 2}) | list }}"}},
    {"name": "human", "debug": {"msg": "{{ [1048576 | human_readable, '2 KB' | human_to_bytes] }}"}},
    {"name": "rekey", "debug": {"msg": "{{ users | rekey_on_member('name') }}"}},
    {"name": "hash filters", "debug": {"msg": "{{ ['x' | md5, 'x' | sha1] }}"}},
    {"name": "fqcn filter", "debug": {"msg": "{{ [3, 1] | ansible.builtin.zip([4, 2]) | list }}"}},
    {"name": "strftime", "debug": {"msg": "{{ '%Y' | strftime(0, utc=True) }}"}},
    {"name": "empty select is false", "debug": {"msg": "{{ [1, 2] | select('gt', 5) | default(['none'], true) | first }}"}},
    {"name": "map is a list", "debug": {"msg": "{{ ([1, 2] | map('string')) + ['3'] }}"}},
    {"name": "search path", "debug": {"msg": "{{ ansible_search_path | length }}"}},
    {"name": "extended loop", "debug": {"msg": "{{ ansible_loop.previtem is undefined }} {{ ansible_loop.nextitem is undefined }}"},
     "loop": ["x", "y"], "loop_control": {"extended": True}},
    {"name": "label uses own register", "command": "echo {{ item }}", "register": "own",
     "loop": [1, 2], "loop_control": {"label": "{{ own.stdout }}"}, "ignore_errors": True},
    {"name": "after label", "debug": {"msg": "{{ own is failed }}"}},
    {"name": "label over a skipped item", "command": "echo {{ item }}", "register": "lab",
     "loop": ["changed", "skipped"], "loop_control": {"label": "{{ lab.stdout }}"},
     "when": "item == 'changed'", "ignore_errors": True},
    {"name": "after skipped label", "debug": {"msg": "{{ lab.results | map(attribute='failed') | list }} "
                                                     "{{ 'no attribute' in lab.results[1].msg }}"}},
    {"name": "templated loop_var", "debug": {"msg": "{{ my_item }} {{ my_idx }}"}, "loop": ["a", "b"],
     "loop_control": {"loop_var": "{{ var_name }}", "index_var": "my_idx"}, "vars": {"var_name": "my_item"}},
    {"name": "b64decode keeps bytes", "copy": {"content": "{{ '6Q==' | b64decode }}\n", "dest": "{d}/latin1.txt"}},
    {"name": "latin1 file", "stat": {"path": "{d}/latin1.txt"}, "register": "latin1"},
    {"name": "latin1 checksum", "debug": {"msg": "{{ latin1.stat.checksum }} {{ '??>' | b64encode(urlsafe=True) }} "
                                                 "{{ 'Pz8-' | b64decode(urlsafe=True) }}"}},
    {"name": "controller python", "debug": {"msg": "{{ ansible_playbook_python is file }}"}},
    {"name": "with_list of a dict", "debug": {"msg": "{{ item }}"}, "loop": "{{ query('list', {'k': 1}) }}"},
    # from_json's decoder profiles: ansible-inventory --export's __ansible_unsafe text (host data)
    {"name": "exported inventory", "command": {"argv": ["echo", '{"_meta": {"x": {"__ansible_unsafe": "v"}}, "n": [1]}']},
     "register": "exported"},
    {"name": "from_json inventory_legacy", "debug": {"msg": "{{ exported.stdout | from_json(profile='inventory_legacy') }}"}},
    {"name": "from_json legacy", "debug": {"msg": "{{ exported.stdout | from_json(profile='legacy') }}"}},
    {"name": "from_json tagless tagged", "debug": {"msg": "{{ exported.stdout | from_json }}"}, "ignore_errors": True},
    {"name": "from_json unknown profile", "debug": {"msg": "{{ '{}' | from_json(profile='nope') }}"}, "ignore_errors": True},
    # a lookup renders the string constants written in its call that hold a template, and no other
    # string: a host's output, a value computed from it or from constants, a variable's value stay data
    {"name": "host text", "command": "echo \"{{ '{{' }} 6 * 7 }}\"", "register": "host_text"},
    {"name": "host text fact", "set_fact": {"host_fact": "{{ host_text.stdout | trim }}"}},
    {"name": "term written", "debug": {"msg": "{{ lookup('list', 'c {{ 1 + 1 }}') }}"}},
    {"name": "term registered", "debug": {"msg": "{{ lookup('list', host_text.stdout) }}"}},
    {"name": "term filtered", "debug": {"msg": "{{ lookup('list', host_text.stdout | trim) }}"}},
    {"name": "term joined", "debug": {"msg": "{{ lookup('list', 'x' ~ host_text.stdout) }}"}},
    {"name": "term in a list", "debug": {"msg": "{{ lookup('list', ['{{ 1 + 1 }}', host_text.stdout | trim]) }}"}},
    {"name": "term in a dict", "debug": {"msg": "{{ lookup('list', {'k': host_text.stdout | trim}) }}"}},
    {"name": "term set_fact", "debug": {"msg": "{{ lookup('list', host_fact) }}"}},
    {"name": "term from constants", "debug": {"msg": "{{ lookup('list', '{' ~ '{ 6 * 7 }}') }}"}},
]


def test_filters_lookups_and_loops_match_ansible(tmp_path):
    plays = [{"name": "filters", "vars": {"who": "world", "users": [
        {"name": "a", "keys": [1, 2]}, {"name": "b", "keys": [3]}]}, "tasks": TASKS}]
    theirs, ours = compare_plays(tmp_path, plays, {"files/data1.txt": "from files dir\n",
                                                   "files/data2.txt": "  second\n",
                                                   "templates/none.j2": "{# writes nothing #}\n"})
    keys = ("changed", "failed", "msg")
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        if name in ("search path",):
            continue
        got = fields(a, keys), fields(o, keys)
        if got[0]["failed"] and got[1]["failed"]:  # the plugin's own message, in each tool's wrapping
            got = tuple({**g, "msg": g["msg"].rsplit(" failed: ", 1)[-1].split("The error was: ")[-1]} for g in got)
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched, mismatched
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    assert dict(ours[0])["search path"]["msg"] == 1
