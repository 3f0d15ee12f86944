#!/usr/bin/env python3
"""Dynamic inventory with _meta.hostvars (the usual shape)."""
import json
import sys

INVENTORY = {
    "web": {"hosts": ["w1", "w2"], "vars": {"http_port": 80, "ansible_user": "www"}},
    "db": {"hosts": ["d1"], "children": ["backup"]},
    "backup": ["b1"],
    "legacy": {"ansible_host": "10.9.9.9"},
    "prod": {"children": ["web", "db"], "vars": {"env": "prod"}},
    "_meta": {
        "hostvars": {
            "w1": {"ansible_host": "10.0.0.11", "ansible_ssh_extra_args": "-o ForwardAgent=yes"},
            "d1": {"ansible_host": "10.0.1.1", "ansible_port": 2200, "primary": True},
            "b1": {"nightly": {"hour": 2}},
        }
    },
}

if len(sys.argv) > 1 and sys.argv[1] == "--list":
    json.dump(INVENTORY, sys.stdout)
elif len(sys.argv) > 2 and sys.argv[1] == "--host":
    json.dump({}, sys.stdout)
else:
    sys.exit("usage: inventory.py --list | --host NAME")
