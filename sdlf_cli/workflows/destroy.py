"""`sdlf destroy`: delete the lake's stacks, children first (dataset -> pipeline -> team -> foundations ->
bootstrap), independent ones in parallel, each delete waited for with its events streamed like a deploy.

The templates retain data (DeletionPolicy Retain on buckets, tables, keys, the shared Lambda layer): by default
those resources are kept and listed by name. With `include_data`, once their stacks are gone, versioned buckets
are emptied (every version and delete marker) and deleted, tables and layer versions deleted, and keys scheduled
for deletion in 7 days. Resources an earlier destroy retained (their stacks already gone) are found by the names
the configuration's templates give them, so `destroy --include-data` also finishes an earlier `destroy`.

Nothing is deleted without `confirm(plan)` answering yes; `dry_run` returns the plan only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sdlf_cli.aws.cloudformation import CloudFormationGateway, StackInfo
from sdlf_cli.config.model import LakeConfig
from sdlf_cli.deploy import NullReporter, StackDeployer, StackResult, StackSpec, run_stacks
from sdlf_cli.errors import SdlfError, UsageError
from sdlf_cli.lake import Lake
from sdlf_cli.naming import Names
from sdlf_cli.render import RenderedTemplate, render_layer
from sdlf_cli.workflows.deploy import DELIVERY_LAYERS, all_layers
from sdlf_cli.workflows.status import is_lake_stack

# Depth of each layer: a stack is deleted after every deeper stack of its scope (the whole lake for
# bootstrap/foundations/cicd, its team for the rest). The delivery target goes last with bootstrap: stacks
# deployed through its CloudFormation role need that role to be deleted.
DEPTH = {"bootstrap": 0, "cicd-target": 0, "foundations": 1, "cicd": 1, "team": 2, "pipeline": 3, "dataset": 4}
KEY_PENDING_DAYS = 7
# Purged in this order: keys last, so nothing still encrypted with them is left behind by a failure.
PURGE_ORDER = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Lambda::LayerVersion", "AWS::KMS::Key")


class DestroyRefused(UsageError):
    """No confirmation: nothing was deleted."""


class DestroyCancelled(SdlfError):
    pass


@dataclass(frozen=True)
class RetainedResource:
    stack: str
    logical_id: str
    resource_type: str
    physical_id: str
    action: str = "retained"  # retained | deleted | scheduled for deletion in 7 days | would delete | failed: ...

    @property
    def failed(self) -> bool:
        return self.action.startswith("failed")

    def to_dict(self) -> dict:
        return {"stack": self.stack, "logical_id": self.logical_id, "resource_type": self.resource_type,
                "physical_id": self.physical_id, "action": self.action}


@dataclass(frozen=True)
class DestroyPlan:
    env: str
    stacks: list[StackSpec]  # children first; depends_on = the stacks deleted before it
    retained: list[RetainedResource]
    include_data: bool

    @property
    def empty(self) -> bool:
        return not self.stacks and not (self.include_data and self.retained)

    def summary(self) -> str:
        data = (f"and delete {len(self.retained)} retained data resource(s)" if self.include_data
                else f"keeping {len(self.retained)} retained data resource(s)")
        return f"delete {len(self.stacks)} stack(s) of env '{self.env}' {data}"


@dataclass
class DestroyResult:
    plan: DestroyPlan
    results: list[StackResult] = field(default_factory=list)
    retained: list[RetainedResource] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and not any(r.failed for r in self.retained)

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "include_data": self.plan.include_data,
            "ok": self.ok,
            "stacks": [s.name for s in self.plan.stacks],
            "results": [r.to_dict() for r in self.results],
            "retained": [r.to_dict() for r in self.retained],
        }


# --- the plan -----------------------------------------------------------------------------------------------
def _team(stack: StackInfo | StackSpec) -> str | None:
    return stack.tags.get("sdlf:team")


def delete_order(stacks: list[StackInfo]) -> list[StackSpec]:
    """Specs for `run_stacks` with the dependencies reversed: each stack waits for the deeper stacks of its
    scope. Listed children first (deepest layer first, then by name)."""
    def depth(s: StackInfo) -> int:
        return DEPTH.get(s.tags.get("sdlf:layer", ""), 1)

    specs = []
    for stack in sorted(stacks, key=lambda s: (-depth(s), s.name)):
        scope_wide = _team(stack) is None
        waits_for = tuple(sorted(
            other.name for other in stacks
            if depth(other) > depth(stack) and (scope_wide or _team(other) == _team(stack))
        ))
        specs.append(StackSpec(name=stack.name, layer=stack.tags.get("sdlf:layer", "?"), template_body="",
                               parameters={}, tags=dict(stack.tags), depends_on=waits_for))
    return specs


def wanted(layer: str, name: str, targets: list[str] | None) -> bool:
    """No targets: everything. Else the stacks named, and every stack as deep as the shallowest layer named
    (children go with their parents). The delivery layers have no children and go only when named."""
    if not targets or name in targets or (layer in DELIVERY_LAYERS and layer in targets):
        return True
    depths = [DEPTH[t] for t in targets if t in DEPTH and t not in DELIVERY_LAYERS]
    return bool(depths) and layer not in DELIVERY_LAYERS and DEPTH.get(layer, 1) >= min(depths)


def _unknown_target(cfg: LakeConfig, targets: list[str]) -> UsageError:
    return UsageError(f"unknown layer or stack {', '.join(targets)} in env '{cfg.env}'; expected a layer "
                      f"({', '.join(DEPTH)}) or one of the lake's stacks (see `sdlf status --env {cfg.env}`)")


def check_targets(cfg: LakeConfig, targets: list[str] | None) -> None:
    """Refuses, before any AWS call, targets that cannot be a layer nor a stack of this lake (all named
    <prefix>-...)."""
    impossible = [t for t in targets or [] if t not in DEPTH and not t.startswith(cfg.names.prefix + "-")]
    if impossible:
        raise _unknown_target(cfg, impossible)


def select(cfg: LakeConfig, stacks: list[StackInfo], targets: list[str] | None) -> list[StackInfo]:
    """The lake's stacks that `targets` (layers or stack names of the lake) choose."""
    names = {s.name for s in stacks}
    unknown = [t for t in targets or [] if t not in DEPTH and t not in names]
    if unknown:
        raise _unknown_target(cfg, unknown)
    return [s for s in stacks if wanted(s.tags.get("sdlf:layer", ""), s.name, targets)]


def retained_in(gateway: CloudFormationGateway, stack_name: str) -> list[RetainedResource]:
    """Resources of a live stack whose DeletionPolicy keeps them when the stack goes."""
    resources = (gateway.template(stack_name).get("Resources") or {})
    kept = {lid for lid, res in resources.items() if isinstance(res, dict) and res.get("DeletionPolicy") == "Retain"}
    return [RetainedResource(stack_name, r.logical_id, r.resource_type, r.physical_id)
            for r in gateway.resources(stack_name) if r.logical_id in kept and r.physical_id]


def plan_destroy(lake: Lake, account: str, *, layers: list[str] | None = None,
                 include_data: bool = False, root: Path = Path(".")) -> DestroyPlan:
    cfg, gateway = lake.config, lake.stacks
    live = [s for s in gateway.list_stacks() if is_lake_stack(cfg, s)]
    chosen = select(cfg, live, layers)
    retained = [r for s in chosen for r in retained_in(gateway, s.name)]
    if include_data:
        gone = _declared_templates(cfg, root, layers, exclude={s.name for s in live})
        known = {(r.resource_type, r.physical_id) for r in retained}
        retained += [r for r in _leftovers(lake, gone, account) if (r.resource_type, r.physical_id) not in known]
    return DestroyPlan(cfg.env, delete_order(chosen), retained, include_data)


# --- leftovers of an earlier destroy -----------------------------------------------------------------------
def _declared_templates(cfg: LakeConfig, root: Path, targets: list[str] | None, exclude: set[str]) -> list[RenderedTemplate]:
    """Rendered templates of the selected stacks that no longer exist."""
    templates = [t for layer in ["bootstrap", *all_layers(cfg, root)] for t in render_layer(cfg, layer, root / "templates")]
    return [t for t in templates if t.stack_name not in exclude and wanted(t.layer, t.stack_name, targets)]


def _name(value, account: str, region: str) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        value = value["Fn::Sub"]
    return Names.resolve(value, account, region) if isinstance(value, str) else None


def _leftovers(lake: Lake, templates: list[RenderedTemplate], account: str) -> list[RetainedResource]:
    """Retained resources of stacks already deleted, found by the names (or, for keys, descriptions) their
    templates give them."""
    from cfn_tools import load_yaml

    region = lake.target.region
    found: list[RetainedResource] = []
    keys = None
    for template in templates:
        resources = (load_yaml(template.body) or {}).get("Resources") or {}
        for lid, res in resources.items():
            if res.get("DeletionPolicy") != "Retain":
                continue
            kind, props = res.get("Type"), res.get("Properties") or {}
            ids: list[str] = []
            if kind == "AWS::S3::Bucket":
                ids = [n for n in [_name(props.get("BucketName"), account, region)] if n and lake.storage.bucket_exists(n)]
            elif kind == "AWS::DynamoDB::Table":
                ids = [n for n in [_name(props.get("TableName"), account, region)] if n and lake.tables.exists(n)]
            elif kind == "AWS::Lambda::LayerVersion" and isinstance(props.get("LayerName"), str):
                ids = lake.functions.layer_versions(props["LayerName"])
            elif kind == "AWS::KMS::Key" and isinstance(props.get("Description"), str):
                keys = keys if keys is not None else lake.keys.live_customer_keys()
                ids = [k for k, description in keys.items() if description == props["Description"]]
            found += [RetainedResource(template.stack_name, lid, kind, i) for i in ids]
    return found


# --- purging retained data ---------------------------------------------------------------------------------
def purge(lake: Lake, resource: RetainedResource) -> RetainedResource:
    """Delete one retained resource; the result's action says what happened."""
    kind, rid = resource.resource_type, resource.physical_id
    try:
        if kind == "AWS::S3::Bucket":
            n = lake.storage.empty_bucket(rid)
            lake.storage.delete_bucket(rid)
            action = f"deleted ({n} object version(s) and delete marker(s))"
        elif kind == "AWS::DynamoDB::Table":
            lake.tables.delete(rid)
            action = "deleted"
        elif kind == "AWS::Lambda::LayerVersion":
            name, version = rid.rsplit(":", 2)[-2:]
            lake.functions.delete_layer_version(name, int(version))
            action = "deleted"
        elif kind == "AWS::KMS::Key":
            lake.keys.schedule_deletion(rid, KEY_PENDING_DAYS)
            action = f"scheduled for deletion in {KEY_PENDING_DAYS} days"
        else:
            action = "retained (sdlf does not delete this type)"
    except SdlfError as err:
        action = f"failed: {err}"
    return replace(resource, action=action)


def _purge_rank(resource: RetainedResource) -> int:
    kind = resource.resource_type
    return PURGE_ORDER.index(kind) if kind in PURGE_ORDER else len(PURGE_ORDER)


# --- the workflow ------------------------------------------------------------------------------------------
def destroy(lake: Lake, *, layers: list[str] | None = None, include_data: bool = False,
            dry_run: bool = False, confirm: Callable[[DestroyPlan], bool] | None = None, reporter=None,
            root: Path = Path(".")) -> DestroyResult:
    """`confirm(plan)` must answer True before anything is deleted; None (no way to ask) refuses."""
    cfg = lake.config
    check_targets(cfg, layers)
    account = lake.account()
    plan = plan_destroy(lake, account, layers=layers, include_data=include_data, root=root)
    if dry_run:
        doomed = "would delete" if include_data else "would be retained"
        return DestroyResult(plan, retained=[replace(r, action=doomed) for r in plan.retained], dry_run=True)
    if plan.empty:
        return DestroyResult(plan, retained=list(plan.retained))
    if confirm is None:
        raise DestroyRefused(
            f"refusing to {plan.summary()} without confirmation: this run cannot ask (not interactive). "
            f"Run `sdlf destroy --dry-run --env {cfg.env}` to see the plan, then again with --yes.")
    if not confirm(plan):
        raise DestroyCancelled("destroy cancelled: nothing was deleted")

    reporter = reporter or NullReporter()
    deployer = StackDeployer(lake.stacks, reporter)
    results = run_stacks(plan.stacks, deployer.delete, reporter=reporter)
    gone = {r.name for r in results if r.status in ("deleted", "unchanged")}
    planned = {s.name for s in plan.stacks}
    retained = []
    for r in sorted(plan.retained, key=_purge_rank):
        if r.stack in planned and r.stack not in gone:
            retained.append(replace(r, action="retained (its stack was not deleted)"))
        else:
            retained.append(purge(lake, r) if include_data else r)
    return DestroyResult(plan, results, retained)
