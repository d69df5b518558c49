"""`sdlf status`: every stack the configuration declares, plus the lake's stacks it no longer declares, each with
its CloudFormation status, whether it matches what `sdlf deploy` would deploy now, and what to run next.

"Matches" is the deployer's own test: the fingerprint tag `sdlf:fingerprint` on the stack against the fingerprint
of the spec deploy would build now (same render, same artifact keys, same parameters and tags, the SSM values and
imported exports CloudFormation would resolve, and where the SSM values it reads come from - so a new layer zip shows
every pipeline that uses the layer as changed before anything is deployed). Nothing is
changed; the only local work is rendering and building the (deterministic, cached) code zips.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sdlf_cli.aws.cloudformation import StackInfo
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.deploy import FINGERPRINT_TAG, StackSpec, statuses
from sdlf_cli.deploy.inputs import InputResolver
from sdlf_cli.lake import Lake
from sdlf_cli.package import build_artifacts, parameter_values
from sdlf_cli.render import render_layer
from sdlf_cli.results import Listing
from sdlf_cli.workflows.deploy import (all_layers, build_spec, delivery_layers, deployer_values, lake_sources,
                                       stack_spec)

IN_SYNC = "in sync"
CHANGED = "changed"
NOT_DEPLOYED = "not deployed"
NO_FINGERPRINT = "no fingerprint"
FAILED_CREATE = "failed create"
NEVER_CREATED = "never created"
BLOCKED = "blocked"
BUSY = "busy"
ORPHAN = "not in configuration"

LAKE_TAGS = ("sdlf:org", "sdlf:app", "sdlf:env")


@dataclass(frozen=True)
class StackState:
    name: str
    layer: str
    unit: str  # "bootstrap", "foundations", "<team>", "<team>/<pipeline>", "<team>/<dataset>"
    status: str | None  # CloudFormation's status; None when the stack does not exist
    last_updated: datetime | None
    drift: str
    next_step: str  # what to run; "" when nothing is needed

    @property
    def needs_action(self) -> bool:
        return bool(self.next_step)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "unit": self.unit,
            "status": self.status,
            "last_updated": self.last_updated.isoformat() if self.last_updated else None,
            "drift": self.drift,
            "next_step": self.next_step,
        }


def is_lake_stack(cfg: LakeConfig, stack: StackInfo) -> bool:
    """Deployed by sdlf for this (org, app, env): the deployer tags every stack with them."""
    wanted = {"sdlf:org": cfg.org, "sdlf:app": cfg.app, "sdlf:env": cfg.env}
    return all(stack.tags.get(k) == v for k, v in wanted.items())


def unit_of(tags: dict[str, str]) -> str:
    """The unit a stack's tags name (the inverse of deploy's unit_tags)."""
    layer = tags.get("sdlf:layer", "")
    team = tags.get("sdlf:team")
    inner = tags.get(f"sdlf:{layer}") if layer in ("pipeline", "dataset") else None
    return "/".join(p for p in (team, inner) if p) or layer


def deploy_command(cfg: LakeConfig, layer: str) -> str:
    # The bootstrap stack is deployed by every deploy, before the layers asked for.
    return f"sdlf deploy {'foundations' if layer == 'bootstrap' else layer} --env {cfg.env}"


def classify(cfg: LakeConfig, layer: str, stack: StackInfo | None, fingerprint: str) -> tuple[str, str]:
    """(drift, next step) of one declared stack."""
    deploy = f"`{deploy_command(cfg, layer)}`"
    if stack is None:
        return NOT_DEPLOYED, f"{deploy} creates it"
    if statuses.is_in_progress(stack.status):
        return BUSY, "an operation is running; run `sdlf status` again when it has finished"
    if stack.status in statuses.RECREATE:
        return FAILED_CREATE, f"{deploy} deletes and recreates it (its events say why the create failed)"
    if stack.status == statuses.REVIEW:
        return NEVER_CREATED, f"{deploy} deletes the leftover and creates it"
    if stack.status in statuses.BLOCKED:
        return BLOCKED, statuses.BLOCKED[stack.status]
    rolled_back = "its last update was rolled back; " if stack.status in statuses.ROLLED_BACK else ""
    deployed = stack.tags.get(FINGERPRINT_TAG)
    if deployed == fingerprint:
        return IN_SYNC, (f"{rolled_back}nothing to do" if rolled_back else "")
    if deployed is None:
        return NO_FINGERPRINT, f"{rolled_back}{deploy} updates it and records its fingerprint"
    plan = f"sdlf plan {'foundations' if layer == 'bootstrap' else layer} --env {cfg.env}"
    return CHANGED, f"{rolled_back}`{plan}` shows the changes, {deploy} applies them"


def orphan_step(cfg: LakeConfig, stack: StackInfo) -> str:
    return f"`sdlf destroy {stack.name} --env {cfg.env}` deletes it (data it retains is kept unless --include-data)"


def declared_specs(lake: Lake, bucket: str, root: Path) -> list[StackSpec]:
    """The specs `sdlf deploy --all` would deploy now (bootstrap first), built by deploy's own helpers."""
    cfg = lake.config
    layers = ["bootstrap", *all_layers(cfg, root), *delivery_layers(cfg)]
    templates = [t for layer in layers for t in render_layer(cfg, layer, root / "templates")]
    bootstrap, rest = templates[0], templates[1:]
    code = {**parameter_values(build_artifacts(root, root / ".sdlf" / "build" / cfg.env / "artifacts")),
            **deployer_values(lake)}
    in_run = {t.stack_name for t in rest}
    sources = lake_sources(rest, bucket, code)
    return [build_spec(cfg, bootstrap, {}), *(stack_spec(cfg, t, bucket, code, in_run, sources) for t in rest)]


class LakeStatus(Listing):
    key = "stacks"


def lake_status(lake: Lake, root: Path = Path(".")) -> LakeStatus:
    cfg = lake.config
    account = lake.account()
    live = {s.name: s for s in lake.stacks.list_stacks(name_prefix=f"{cfg.names.prefix}-")}
    boot = live.get(cfg.names.bootstrap_stack())
    bucket = (boot.outputs.get("ArtifactsBucket") if boot else None) or cfg.names.resolve(
        cfg.names.bucket("artifacts"), account, lake.target.region)

    resolve = InputResolver(lake.parameters.values, lake.stacks.exports)
    states = []
    for spec in map(resolve, declared_specs(lake, bucket, root)):
        stack = live.get(spec.name)
        drift, step = classify(cfg, spec.layer, stack, spec.fingerprint())
        states.append(StackState(spec.name, spec.layer, unit_of(spec.tags), stack.status if stack else None,
                                 stack.last_updated if stack else None, drift, step))
    declared = {s.name for s in states}
    for stack in sorted(live.values(), key=lambda s: s.name):
        if stack.name not in declared and is_lake_stack(cfg, stack):
            states.append(StackState(stack.name, stack.tags.get("sdlf:layer", "?"), unit_of(stack.tags), stack.status,
                                     stack.last_updated, ORPHAN, orphan_step(cfg, stack)))
    return LakeStatus(states)
