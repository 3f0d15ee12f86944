"""How bridge/action.py and bridge/probe.py start ansible-core in their child process.

Both run apart from the controller (ansible-core keeps global state: configuration read at
import, plugin directories, its collection finder) and begin the same way: the plugin loader
as ansible-playbook sets it up for a playbook, with the playbook's (and its roles')
directories. Imported only by those two files, never by the controller.
"""

from __future__ import annotations

import os
from typing import Any

# before ansible-core is imported (it reads its configuration then): answers are JSON, never colour
os.environ.setdefault("ANSIBLE_NOCOLOR", "1")


def plugin_loader(dirs: list[str]) -> Any:
    """ansible-core's plugin loader, with ``dirs`` (the playbook's directory first, then its
    roles') searched as ansible-playbook searches them: ``collections/`` beside the playbook,
    and ``library/``, ``module_utils/``, ``action_plugins/``, ``connection_plugins/``... in each."""
    from ansible.plugins import loader

    loader.init_plugin_loader()
    if dirs:
        from ansible.utils.collection_loader import AnsibleCollectionConfig

        AnsibleCollectionConfig.playbook_paths = [dirs[0]]
    for directory in dirs:
        loader.add_all_plugin_dirs(directory)
    return loader
