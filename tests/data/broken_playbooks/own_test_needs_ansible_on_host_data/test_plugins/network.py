from ansible.module_utils.common.network import is_mac


class TestModule:
    def tests(self):
        return {"is_mac": is_mac}
