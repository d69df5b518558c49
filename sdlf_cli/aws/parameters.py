"""SSM Parameter Store: every parameter below a path (the lake's registry)."""
from __future__ import annotations

from sdlf_cli.aws.gateway import Gateway


class Parameters(Gateway):
    service = "ssm"

    def below(self, path: str) -> dict[str, str]:
        """Parameter name relative to `path` ("buckets/raw") -> value, recursively."""
        return {param["Name"][len(path) + 1:]: param["Value"]
                for param in self._pages("get_parameters_by_path", "Parameters", Path=path, Recursive=True)}
