"""SSM Parameter Store: every parameter below a path (the lake's registry), and values by name."""
from __future__ import annotations

from sdlf_cli.aws.gateway import Gateway

# GetParameters takes at most this many names per call.
_BATCH = 10


class Parameters(Gateway):
    service = "ssm"

    def below(self, path: str) -> dict[str, str]:
        """Parameter name relative to `path` ("buckets/raw") -> value, recursively."""
        return {param["Name"][len(path) + 1:]: param["Value"]
                for param in self._pages("get_parameters_by_path", "Parameters", Path=path, Recursive=True)}

    def values(self, names) -> dict[str, str | None]:
        """name -> value of each named parameter, None for one that does not exist (yet): the values
        CloudFormation resolves for `AWS::SSM::Parameter::Value<…>` parameters."""
        wanted = sorted(set(names))
        found: dict[str, str | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), _BATCH):
            response = self._call("get_parameters", Names=wanted[start:start + _BATCH])
            found.update({param["Name"]: param["Value"] for param in response.get("Parameters", [])})
        return found
