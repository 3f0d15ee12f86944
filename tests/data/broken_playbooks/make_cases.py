"""Write the broken-playbook corpus: one directory per case, each with a site.yml.

Run from anywhere: python tests/data/broken_playbooks/make_cases.py. expected.json (what each
case must be refused with: file, line, column, a part of the message) is kept by hand.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

INVENTORY = """\
[web]
web1 ansible_connection=local
web2 ansible_host=10.0.0.2 app_env=prod

[db]
db1 ansible_host=10.0.0.3
"""

ROLE_WEB = {"roles/web/tasks/main.yml": "- debug: msg=web\n"}

CASES: dict[str, dict[str, str]] = {
    "yaml_bad_indent": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg=one
             - debug: msg=two
        """},
    "yaml_unquoted_template": {"site.yml": """\
        - hosts: web
          vars:
            a: {{ b }}
        """},
    "empty_playbook": {"site.yml": "# nothing here\n"},
    "playbook_is_mapping": {"site.yml": """\
        hosts: web
        tasks: []
        """},
    "play_is_string": {"site.yml": """\
        - hosts: web
        - just a string
        """},
    "play_unknown_keyword": {"site.yml": """\
        - hosts: web
          taks:
            - debug: msg=hi
        """},
    "play_missing_hosts": {"site.yml": """\
        - name: no hosts
          tasks:
            - debug: msg=hi
        """},
    "include_playbook_removed": {"site.yml": """\
        - include_playbook: other.yml
        """},
    "task_unknown_keyword": {"site.yml": """\
        - hosts: web
          tasks:
            - name: misspelled when
              debug: msg=hi
              whne: true
        """},
    "task_misspelled_module": {"site.yml": """\
        - hosts: web
          tasks:
            - name: copy with a typo
              copyy:
                src: a
                dest: /tmp/b
        """},
    "task_unsupported_builtin": {"site.yml": """\
        - hosts: web
          tasks:
            - validate_argument_spec:
                argument_spec: {}
        """},
    "task_collection_module": {"site.yml": """\
        - hosts: web
          tasks:
            - community.general.ufw:
                rule: allow
        """},
    "task_two_modules": {"site.yml": """\
        - hosts: web
          tasks:
            - copy: content=x dest=/tmp/x
              file: path=/tmp/x state=touch
        """},
    "task_no_module": {"site.yml": """\
        - hosts: web
          tasks:
            - name: nothing to do
              when: true
        """},
    "task_is_string": {"site.yml": """\
        - hosts: web
          tasks:
            - echo hi
        """},
    "tasks_not_list": {"site.yml": """\
        - hosts: web
          tasks:
            debug: msg=hi
        """},
    "missing_role": {"site.yml": """\
        - hosts: web
          roles:
            - webb
        """, **ROLE_WEB},
    "collection_role": {"site.yml": """\
        - hosts: web
          roles:
            - acme.tools.web
        """},
    "role_tasks_from_missing": {"site.yml": """\
        - hosts: web
          tasks:
            - import_role:
                name: web
                tasks_from: install
        """, **ROLE_WEB},
    "role_dependency_loop": {"site.yml": """\
        - hosts: web
          roles: [a]
        """, "roles/a/meta/main.yml": "dependencies: [b]\n",
        "roles/a/tasks/main.yml": "- debug: msg=a\n",
        "roles/b/meta/main.yml": "dependencies:\n  - role: a\n",
        "roles/b/tasks/main.yml": "- debug: msg=b\n"},
    "role_deps_not_list": {"site.yml": """\
        - hosts: web
          roles: [a]
        """, "roles/a/meta/main.yml": "dependencies: b\n",
        "roles/a/tasks/main.yml": "- debug: msg=a\n"},
    "role_task_unknown_module": {"site.yml": """\
        - hosts: web
          roles: [web]
        """, "roles/web/tasks/main.yml": """\
        - name: fine
          debug: msg=ok
        - name: not a module
          sevice:
            name: nginx
            state: started
        """},
    "role_tasks_file_is_mapping": {"site.yml": """\
        - hosts: web
          roles: [web]
        """, "roles/web/tasks/main.yml": "name: not a list\ndebug: msg=x\n"},
    "missing_import_tasks": {"site.yml": """\
        - hosts: web
          tasks:
            - import_tasks: tasks/setup.yml
        """},
    "import_tasks_with_loop": {"site.yml": """\
        - hosts: web
          tasks:
            - import_tasks: tasks/t.yml
              loop: [1, 2]
        """, "tasks/t.yml": "- debug: msg=x\n"},
    "include_tasks_bad_keyword": {"site.yml": """\
        - hosts: web
          tasks:
            - include_tasks: tasks/t.yml
              become: true
        """, "tasks/t.yml": "- debug: msg=x\n"},
    "include_loop": {"site.yml": """\
        - hosts: web
          tasks:
            - include_tasks: tasks/again.yml
        """, "tasks/again.yml": """\
        - debug: msg=again
        - include_tasks: again.yml
        """},
    "import_name_from_facts": {"site.yml": """\
        - hosts: web
          tasks:
            - import_tasks: "tasks/{{ ansible_os_family }}.yml"
        """},
    "include_role_name_from_set_fact": {"site.yml": """\
        - hosts: web
          vars:
            flavour: small
          tasks:
            - set_fact:
                flavour: large
            - include_role:
                name: "{{ flavour | default('small') }}"
        """, "roles/small/tasks/main.yml": "- debug: msg=small\n",
        "roles/large/tasks/main.yml": "- debug: msg=large\n"},
    "include_vars_directory": {"site.yml": """\
        - hosts: web
          tasks:
            - include_vars:
                dir: "{{ ansible_hostname }}"
        """},
    "include_vars_file_and_dir": {"site.yml": """\
        - hosts: web
          tasks:
            - include_vars:
                dir: vars
                file: main.yml
        """},
    "included_file_is_playbook": {"site.yml": """\
        - hosts: web
          tasks:
            - import_tasks: other.yml
        """, "other.yml": """\
        - hosts: db
          tasks: []
        """},
    "missing_import_playbook": {"site.yml": """\
        - import_playbook: plays/missing.yml
        """},
    "import_playbook_loop": {"site.yml": """\
        - import_playbook: site.yml
        """},
    "missing_vars_file": {"site.yml": """\
        - hosts: web
          vars_files:
            - vars/common.yml
        """},
    "vars_file_not_mapping": {"site.yml": """\
        - hosts: web
          vars_files: [vars/list.yml]
        """, "vars/list.yml": "- a\n- b\n"},
    "bad_variable_name": {"site.yml": """\
        - hosts: web
          vars:
            good: 1
            bad-name: 2
        """},
    "missing_copy_src": {"site.yml": """\
        - hosts: web
          tasks:
            - copy:
                src: nginx.conf
                dest: /etc/nginx/nginx.conf
        """},
    "missing_template_in_role": {"site.yml": """\
        - hosts: web
          roles: [web]
        """, "roles/web/tasks/main.yml": """\
        - template:
            src: site.conf.j2
            dest: /etc/site.conf
        """},
    "with_refused_lookup": {"site.yml": """\
        - hosts: web
          tasks:
            - debug:
                msg: "{{ item }}"
              with_url: https://example.com/list
        """},
    "delegate_facts_implicit_host": {"site.yml": """\
        - hosts: web
          tasks:
            - setup:
              delegate_to: db9
              delegate_facts: true
        """},
    "delegate_facts_without_delegate_to": {"site.yml": """\
        - hosts: web
          tasks:
            - setup:
              delegate_facts: true
        """},
    "delegate_facts_per_call": {"site.yml": """\
        - hosts: web
          tasks:
            - command: echo {{ item }}
              delegate_to: "{{ item }}"
              delegate_facts: true
              loop: [db1, web1]
        """},
    "local_action_in_handler_with_flush_in_block": {"site.yml": """\
        - hosts: web
          tasks:
            - command: echo hi
              notify: h
            - block:
                - meta: flush_handlers
              rescue:
                - debug: msg=rescued
          handlers:
            - name: h
              local_action: command echo hi
        """},
    "run_once_in_looped_include": {"site.yml": """\
        - hosts: web
          tasks:
            - command: echo 1 2
              register: out
            - include_tasks: inner.yml
              loop: "{{ out.stdout.split() }}"
        """, "inner.yml": """\
        - command: /usr/bin/true
        - command: /usr/bin/false
          run_once: true
        """},
    "add_host_then_play": {"site.yml": """\
        - hosts: web1
          tasks:
            - add_host: name=new1 groups=fresh
        - hosts: fresh
          tasks:
            - debug: msg=never chosen
        """},
    "group_by_then_play": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg=first
            - group_by: key=env_{{ app_env | default('none') }}
        - import_playbook: other.yml
        """, "other.yml": """\
        - hosts: env_prod
          tasks:
            - debug: msg=never chosen
        """},
    "run_once_templated": {"site.yml": """\
        - hosts: web
          tasks:
            - command: /usr/bin/true
              run_once: "{{ once }}"
        """},
    "serial_not_a_count": {"site.yml": """\
        - hosts: all
          serial: [1, lots]
          tasks:
            - debug: msg=hi
        """},
    "vars_prompt": {"site.yml": """\
        - hosts: web
          vars_prompt:
            - name: password
              prompt: Password?
        """},
    "become_flags_unclosed_quote": {"site.yml": """\
        - hosts: web
          tasks:
            - command: id
              become: true
              become_flags: "-H -S -n -p 'password:"
        """},
    "async_task": {"site.yml": """\
        - hosts: web
          tasks:
            - command: sleep 100
              async: soon
        """},
    "port_on_block_not_a_number": {"site.yml": """\
        - hosts: web
          tasks:
            - block:
                - debug: msg=hi
              port: ssh
        """},
    "remote_user_on_delegated_task": {"site.yml": """\
        - hosts: web
          tasks:
            - command: /usr/bin/true
              delegate_to: db1
              remote_user: admin
        """},
    "hosts_from_host_vars": {"site.yml": """\
        - hosts: "{{ app_env }}"
          tasks: []
        """},
    "unknown_lookup_loop": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg={{ item }}
              with_flatened: [[1], [2]]
        """},
    "loop_and_with_items": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg={{ item }}
              loop: [1]
              with_items: [2]
        """},
    "tags_mapping": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg=hi
              tags:
                web: true
        """},
    "register_bad_name": {"site.yml": """\
        - hosts: web
          tasks:
            - command: /usr/bin/true
              register: my-result
        """},
    "unbalanced_quotes": {"site.yml": """\
        - hosts: web
          tasks:
            - command: echo "unterminated
        """},
    "block_misspelled_rescue": {"site.yml": """\
        - hosts: web
          tasks:
            - block:
                - command: /bin/false
              resuce:
                - debug: msg=caught
        """},
    "when_mapping": {"site.yml": """\
        - hosts: web
          tasks:
            - debug: msg=hi
              when:
                x: 1
        """},
    "vault_damaged": {"site.yml": """\
        - hosts: web
          vars:
            secret: !vault |
              $ANSIBLE_VAULT;1.1;AES256
              6162
        """},
    "module_defaults_unknown_group": {"site.yml": """\
        - hosts: web
          module_defaults:
            group/community.aws.aws:
              region: eu-west-1
          tasks:
            - ping:
        """},
    "module_defaults_whole_template": {"site.yml": """\
        - hosts: web
          tasks:
            - copy:
                dest: /tmp/x
              module_defaults:
                copy: "{{ copy_defaults }}"
        """},
    "module_defaults_not_a_mapping": {"site.yml": """\
        - hosts: web
          tasks:
            - block:
                - ping:
              module_defaults: [ping]
        """},
    "args_template_for_copy": {"site.yml": """\
        - hosts: web
          tasks:
            - copy:
                dest: /tmp/x
              args: "{{ copy_args }}"
        """},
    "environment_not_a_mapping": {"site.yml": """\
        - hosts: web
          environment: {A: b}
          tasks:
            - command: env
              environment: [1]
        """},
    "register_on_include_role": {"site.yml": """\
        - hosts: web
          tasks:
            - include_role:
                name: web
                public: "{{ 'yes' }}"
              register: result
        """, **ROLE_WEB},
    "unknown_strategy": {"site.yml": """\
        - hosts: web
          strategy: mitogen_linear
          tasks: []
        """},
    "own_test_needs_ansible_on_host_data": {"site.yml": """\
        - hosts: web
          tasks:
            - command: cat /sys/class/net/eth0/address
              register: mac
            - debug:
                msg: "{{ 'aa:bb:cc:dd:ee:ff' is is_mac }}"
            - debug:
                msg: "{{ mac.stdout is is_mac }}"
        """, "test_plugins/network.py": """\
        from ansible.module_utils.common.network import is_mac


        class TestModule:
            def tests(self):
                return {"is_mac": is_mac}
        """},
    "own_filter_needs_module_on_facts": {"site.yml": """\
        - hosts: web
          roles:
            - tools
          tasks:
            - debug:
                msg: "{{ item }}"
              loop: "{{ ansible_interfaces | as_yaml }}"
        """, "roles/tools/tasks/main.yml": "- debug: msg=tools\n",
        "roles/tools/filter_plugins/yamlish.py": """\
        import yaml


        class FilterModule:
            def filters(self):
                return {"as_yaml": yaml.safe_dump}
        """},
}


def build() -> dict[str, str]:
    files: dict[str, str] = {"inventory.ini": INVENTORY}
    for case, content in CASES.items():
        for rel, text in content.items():
            files[f"{case}/{rel}"] = textwrap.dedent(text)
    return files


def main() -> None:
    for rel, text in build().items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"{len(CASES)} cases in {os.path.relpath(HERE)}")


if __name__ == "__main__":
    main()
