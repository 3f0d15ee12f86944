"""kv: keep ``KEY = VALUE`` lines in a flat configuration file (a rustle-deploy module).

docs/modules.md walks through this file. It runs inside the host's runtime: standard library
only, Python 3.8 syntax.
"""

import os

RUSTLE_MODULE = {
    "description": "set or remove 'key = value' lines in a flat configuration file",
    "args": {
        "path": {"type": "path", "required": True},
        "key": {"type": "str", "required": True},
        "value": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    },
    "check_mode": True,  # run() looks at ctx.check_mode and changes nothing then
    "diff": True,  # run() returns a diff; kept when the run asks for diffs (--diff)
}


def run(ctx, args):
    path, key, value = args["path"], args["key"], args["value"]
    if args["state"] == "present" and value is None:
        return {"failed": True, "changed": False, "msg": "state is present but value is missing"}
    try:
        with open(path) as fh:
            before = fh.read()
    except FileNotFoundError:
        before = ""
    wanted = f"{key} = {value}"
    lines, found = [], False
    for line in before.splitlines():
        if line.split("=", 1)[0].strip() == key:
            if args["state"] == "present" and not found:
                lines.append(wanted)
                found = True
            continue  # state absent, or a second line for the same key
        lines.append(line)
    if args["state"] == "present" and not found:
        lines.append(wanted)
    after = "\n".join(lines) + ("\n" if lines else "")
    result = {"changed": after != before, "path": path, "key": key}
    if result["changed"]:
        if not ctx.check_mode:
            tmp = path + ".kv-tmp"
            with open(tmp, "w") as fh:
                fh.write(after)
            os.replace(tmp, path)
        result["diff"] = {"before": before, "after": after, "before_header": path, "after_header": path}
    return result
