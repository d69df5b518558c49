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
}

# Longest values the pseudo-parameters can take, used to check limits before knowing them.
LONGEST_ACCOUNT = "123456789012"
LONGEST_REGION = "ap-southeast-4"

LAYERS = ("bootstrap", "foundations", "team", "pipeline", "dataset", "cicd")

# Bucket kinds of the foundations layer (plus the bootstrap artifact bucket).
BUCKET_KINDS = ("raw", "stage", "analytics", "athena", "logs", "artifacts")
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
        """DynamoDB tables: catalog, datasets, pipelines, executions."""
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
