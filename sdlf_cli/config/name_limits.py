"""Every name the lake derives from the configuration, checked against AWS's limits and for clashes."""
from __future__ import annotations

from sdlf_cli.config.model import LakeConfig
from sdlf_cli.errors import Problem
from sdlf_cli.naming import derived_names


def _field_label(field: str, cfg: LakeConfig) -> str:
    """'teams.eng.datasets.x' -> "the dataset name 'x' (teams.eng.datasets.x)"; 'org' -> "org 'acme'"."""
    parts = field.split(".")
    if len(parts) == 4 and parts[2] == "datasets":
        return f"the dataset name {parts[3]!r} ({field})"
    if len(parts) == 4 and parts[2] == "pipelines":
        return f"the pipeline name {parts[3]!r} ({field})"
    if len(parts) == 2 and parts[0] == "teams":
        return f"the team name {parts[1]!r} ({field})"
    return f"{field} {getattr(cfg, field)!r}"


def check_names(cfg: LakeConfig, env_file: str | None = None) -> list[Problem]:
    """Every derived name against naming.LIMITS (and for clashes); one Problem per owning field."""
    too_long: dict[str, list] = {}
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    default_file = env_file or (cfg.files[-1] if cfg.files else "parameters")

    def origin(field: str) -> tuple[str, int | None]:
        found = cfg.origins.get(field)
        return (found.file, found.line) if found else (default_file, None)

    for derived in derived_names(cfg):
        if derived.too_long:
            too_long.setdefault(derived.fields[0], []).append(derived)
        key = (derived.kind, derived.name)
        if key in seen and seen[key] != derived.fields[0]:
            file, line = origin(derived.fields[0])
            other = "a lake-wide resource" if seen[key] in ("org", "app", "env") else seen[key]
            problems.append(Problem(file, line, derived.fields[0],
                                    f"{derived.kind} name {derived.name!r} is also the name of {other}; "
                                    f"rename {derived.fields[0]}"))
        seen.setdefault(key, derived.fields[0])
    for field, names in too_long.items():
        first = names[0]
        excess = max(len(d.name) - d.limit for d in names)
        listed = "; ".join(f"{d.kind} {d.name!r} is {len(d.name)} characters (AWS allows {d.limit})" for d in names)
        labels = [_field_label(f, cfg) for f in first.fields]
        file, line = origin(field)
        plural = "s" if excess > 1 else ""
        problems.append(Problem(file, line, field,
                                f"derived names too long: {listed}; shorten {', '.join(labels[:-1])} or {labels[-1]} "
                                f"by at least {excess} character{plural}"))
    return problems
