"""The one place that builds every resource name, stack name and SSM path.

Templates, the deployer and the Lambda code all take their names from here (Lambdas via
environment variables or SSM that the templates fill from here), so a name is spelled once.

Names that must be unique across accounts or regions (buckets) embed the account and region as
CloudFormation pseudo-parameters; use them inside `!Sub`. `resolve()` fills them in for code that
talks to AWS directly.
"""
from __future__ import annotations

from dataclasses import dataclass

# AWS limits for the kinds of names we derive. Validation checks every derived name against these.
LIMITS = {
    "stack": 128,
    "bucket": 63,
    "function": 64,
    "role": 64,
    "queue": 80,
    "table": 255,
    "topic": 256,
    "state_machine": 80,
    "rule": 64,
    "workgroup": 128,
    "glue_database": 255,
    "glue_job": 255,
    "crawler": 255,
    "kms_alias": 256,
    "log_group": 512,
    "layer": 64,
    "managed_policy": 128,
    "codebuild_project": 150,
    "codepipeline": 100,
}

# Longest values the pseudo-parameters can take, used to check limits before knowing them.
LONGEST_ACCOUNT = "123456789012"
LONGEST_REGION = "ap-southeast-4"

LAYERS = ("bootstrap", "foundations", "team", "pipeline", "dataset", "cicd", "cicd-target")

# CodeBuild projects of the delivery pipeline, one per kind of action (its buildspec is templates/cicd/buildspecs/<kind>.yml).
CICD_BUILDS = ("validate", "plan", "deploy")

# Bucket kinds of the foundations layer (plus the bootstrap artifact bucket).
BUCKET_KINDS = ("raw", "stage", "analytics", "athena", "logs", "artifacts", "boot-logs")
DATA_BUCKET_KINDS = ("raw", "stage", "analytics")


@dataclass(frozen=True)
class Names:
    org: str
    app: str
    env: str

    # --- shared pieces -------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """`org-app-env`: every resource of one lake starts with it."""
        return f"{self.org}-{self.app}-{self.env}"

    def resource(self, *parts: str) -> str:
        """Generic regional resource name: `org-app-env-part-part`."""
        return "-".join([self.prefix, *parts])

    # --- stacks --------------------------------------------------------------------------
    def stack(self, layer: str, *parts: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return "-".join([self.prefix, layer, *parts])

    def bootstrap_stack(self) -> str:
        return self.stack("bootstrap")

    def foundations_stack(self) -> str:
        return self.stack("foundations")

    def team_stack(self, team: str) -> str:
        return self.stack("team", team)

    def pipeline_stack(self, team: str, pipeline: str) -> str:
        return self.stack("pipeline", team, pipeline)

    def dataset_stack(self, team: str, dataset: str) -> str:
        return self.stack("dataset", team, dataset)

    # --- buckets -------------------------------------------------------------------------
    def bucket(self, kind: str) -> str:
        """Bucket name with `${AWS::AccountId}`/`${AWS::Region}` left for `!Sub`."""
        if kind not in BUCKET_KINDS:
            raise ValueError(f"unknown bucket kind {kind!r}")
        return f"{self.prefix}-${{AWS::Region}}-${{AWS::AccountId}}-{kind}"

    # --- foundations resources -----------------------------------------------------------
    def kms_alias(self, *parts: str) -> str:
        return "alias/" + self.resource(*parts)

    def table(self, kind: str) -> str:
        """DynamoDB tables: catalog, executions, quality."""
        return self.resource(kind)

    def function(self, *parts: str) -> str:
        return self.resource(*parts)

    def queue(self, *parts: str) -> str:
        return self.resource(*parts)

    def dlq(self, *parts: str) -> str:
        return self.resource(*parts, "dlq")

    def layer(self, name: str) -> str:
        return self.resource(name)

    def topic(self, *parts: str) -> str:
        return self.resource(*parts)

    def rule(self, *parts: str) -> str:
        return self.resource(*parts)

    def role(self, *parts: str) -> str:
        return self.resource(*parts)

    def state_machine(self, *parts: str) -> str:
        return self.resource(*parts)

    def workgroup(self, *parts: str) -> str:
        return self.resource(*parts)

    def log_group(self, kind: str, name: str) -> str:
        """`kind` is 'lambda' or 'states' or 'glue'; Lambda log groups must match the function."""
        if kind == "lambda":
            return f"/aws/lambda/{name}"
        return f"/aws/vendedlogs/{kind}/{name}"

    def glue_database(self, *parts: str) -> str:
        # Glue/Athena identifiers may not contain '-'.
        return "_".join([self.org, self.app, self.env, *parts]).replace("-", "_")

    # --- delivery pipeline (cicd, cicd-target) --------------------------------------------
    def cicd_stack(self) -> str:
        return self.stack("cicd")

    def cicd_target_stack(self) -> str:
        return self.stack("cicd-target")

    def pipeline(self) -> str:
        """The CodePipeline of the lake, hosted by the tooling environment."""
        return self.resource("cicd")

    def build_project(self, kind: str) -> str:
        if kind not in CICD_BUILDS:
            raise ValueError(f"unknown build kind {kind!r}")
        return self.resource("cicd", kind)

    def build_cache_prefix(self) -> str:
        """Where the pipeline's build projects keep their one S3 cache in the artifacts bucket. What it holds is
        keyed by content (lint and checkov verdicts by template text, vendored layers by their pins), so each build
        reuses what an earlier one of any project judged or built: Validate's verdicts serve the tooling
        environment's Plan, a Plan's serve its Deploy."""
        return f"build-cache/{self.pipeline()}"

    def build_log_group(self) -> str:
        return f"/aws/codebuild/{self.resource('cicd')}"

    def cicd_role(self, kind: str) -> str:
        """build and pipeline (tooling account); deploy and cfn (each target account)."""
        if kind not in ("build", "pipeline", "deploy", "cfn"):
            raise ValueError(f"unknown cicd role {kind!r}")
        return self.role("cicd", kind)

    def boundary_policy(self, owner: str) -> str:
        """Permissions boundary of the roles of a team (or of the lake's own functions, owner "lake")."""
        return self.resource(owner, "boundary")

    def boundary_policy_pattern(self) -> str:
        """Every boundary of this lake: what the deploy roles may attach to a role they create."""
        return self.resource("*", "boundary")

    # --- SSM registry --------------------------------------------------------------------
    @property
    def ssm_prefix(self) -> str:
        return f"/sdlf/{self.org}/{self.app}/{self.env}"

    def ssm(self, *parts: str) -> str:
        return "/".join([self.ssm_prefix, *parts])

    # --- resolution ----------------------------------------------------------------------
    @staticmethod
    def resolve(name: str, account: str, region: str) -> str:
        return name.replace("${AWS::AccountId}", account).replace("${AWS::Region}", region)

    # --- stack tags ----------------------------------------------------------------------
    def tags(self, layer: str, **extra: str) -> dict[str, str]:
        tags = {
            "sdlf:org": self.org,
            "sdlf:app": self.app,
            "sdlf:env": self.env,
            "sdlf:layer": layer,
        }
        tags.update({f"sdlf:{k}": v for k, v in extra.items()})
        return tags


# --- every name a lake derives ---------------------------------------------------------------
LAKE_FIELDS = ("org", "app", "env")

# Per-pipeline and per-dataset resources the pipeline/dataset layers create (suffixes given to Names).
PIPELINE_FUNCTIONS = ("routing-a", "transform-a", "error-a", "routing-b", "transform-b", "error-b")
PIPELINE_STATE_MACHINES = ("sm-a", "sm-b")
TEAM_ROLES = ("lambda", "states", "glue")
FOUNDATION_TABLES = ("catalog", "executions", "quality")


@dataclass(frozen=True)
class DerivedName:
    """One resource name the lake creates, its kind (a key of LIMITS) and the config fields it is built from,
    most specific first (e.g. the dataset's path, then its team's, then org/app/env)."""

    kind: str
    name: str
    fields: tuple[str, ...]

    @property
    def limit(self) -> int:
        return LIMITS[self.kind]

    @property
    def too_long(self) -> bool:
        return len(self.name) > self.limit


def derived_names(cfg, account: str = LONGEST_ACCOUNT, region: str | None = None) -> list[DerivedName]:
    """Every stack/resource name of the lake `cfg` (a LakeConfig), with pseudo-parameters resolved.

    By default the longest account id and the longer of LONGEST_REGION and the configured region are
    substituted, so a lake that passes the limits here passes them in any account.
    """
    if region is None:
        region = max(LONGEST_REGION, getattr(cfg, "region", "") or "", key=len)
    n = cfg.names
    out: list[DerivedName] = []

    def add(kind: str, name: str, *owners: str) -> None:
        out.append(DerivedName(kind, Names.resolve(name, account, region), tuple(owners) + LAKE_FIELDS))

    # bootstrap, foundations and cicd (lake-wide)
    for layer in ("bootstrap", "foundations"):
        add("stack", n.stack(layer))
    for kind in BUCKET_KINDS:
        add("bucket", n.bucket(kind))
    for table in FOUNDATION_TABLES:
        add("table", n.table(table))
    add("function", n.function("catalog"))
    add("log_group", n.log_group("lambda", n.function("catalog")))
    add("role", n.role("catalog"))
    add("queue", n.queue("catalog"))
    add("queue", n.dlq("catalog"))
    add("rule", n.rule("catalog"))
    add("layer", n.layer("datalake"))
    add("topic", n.topic("notifications"))
    add("workgroup", n.workgroup("primary"))
    add("kms_alias", n.kms_alias("artifacts"))
    add("kms_alias", n.kms_alias("lake"))
    add("glue_database", n.glue_database())
    add("managed_policy", n.boundary_policy("lake"))
    cicd = getattr(cfg, "cicd", None)
    if cicd is not None:
        add("stack", n.cicd_target_stack(), "cicd")
        add("role", n.cicd_role("deploy"), "cicd")
        add("role", n.cicd_role("cfn"), "cicd")
        if cicd.tooling_env == cfg.env:
            add("stack", n.cicd_stack(), "cicd")
            add("codepipeline", n.pipeline(), "cicd")
            for kind in CICD_BUILDS:
                add("codebuild_project", n.build_project(kind), "cicd")
            add("log_group", n.build_log_group(), "cicd")
            add("role", n.cicd_role("build"), "cicd")
            add("role", n.cicd_role("pipeline"), "cicd")
            add("kms_alias", n.kms_alias("cicd"), "cicd")

    for team in cfg.teams:
        t = team.name
        tf = f"teams.{t}"
        add("stack", n.team_stack(t), tf)
        for role in TEAM_ROLES:
            add("role", n.role(t, role), tf)
        add("topic", n.topic(t, "notifications"), tf)
        add("workgroup", n.workgroup(t), tf)
        add("kms_alias", n.kms_alias(t), tf)
        add("managed_policy", n.resource(t, "boundary"), tf)
        add("glue_database", n.glue_database(t), tf)
        for pipeline in team.pipelines:
            p = pipeline.name
            pf = f"{tf}.pipelines.{p}"
            add("stack", n.pipeline_stack(t, p), pf, tf)
            for fn in PIPELINE_FUNCTIONS:
                add("function", n.function(t, p, fn), pf, tf)
                add("log_group", n.log_group("lambda", n.function(t, p, fn)), pf, tf)
            for sm in PIPELINE_STATE_MACHINES:
                add("state_machine", n.state_machine(t, p, sm), pf, tf)
                add("log_group", n.log_group("states", n.state_machine(t, p, sm)), pf, tf)
            add("queue", n.queue(t, p, "a"), pf, tf)
            add("queue", n.dlq(t, p, "a"), pf, tf)
        for dataset in team.datasets:
            d = dataset.name
            df = f"{tf}.datasets.{d}"
            add("stack", n.dataset_stack(t, d), df, tf)
            add("queue", n.queue(t, d, "b"), df, tf)
            add("queue", n.dlq(t, d, "b"), df, tf)
            add("glue_job", n.resource(t, d, "job"), df, tf)
            add("glue_job", n.resource(t, d, "dq"), df, tf)
            add("crawler", n.resource(t, d, "crawler"), df, tf)
            add("rule", n.rule(t, d, "schedule"), df, tf)
            add("log_group", n.log_group("glue", n.resource(t, d, "job")), df, tf)
    return out
