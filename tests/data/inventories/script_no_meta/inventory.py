#!/usr/bin/env python3
"""Old-style dynamic inventory: no _meta, so host vars come from --host NAME."""
import json
import sys

GROUPS = {"cache": {"hosts": ["r1", "r2"], "vars": {"maxmemory": "256mb"}}}
HOSTVARS = {"r1": {"ansible_host": "10.1.0.1", "role": "primary"}, "r2": {}}

if len(sys.argv) > 1 and sys.argv[1] == "--list":
    json.dump(GROUPS, sys.stdout)
elif len(sys.argv) > 2 and sys.argv[1] == "--host":
    if sys.argv[2] == "r2":
        sys.stdout.write("")  # an empty answer means no variables
    else:
        json.dump(HOSTVARS.get(sys.argv[2], {}), sys.stdout)
else:
    sys.exit(2)
