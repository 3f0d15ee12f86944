import yaml


class FilterModule:
    def filters(self):
        return {"as_yaml": yaml.safe_dump}
