"""The rendered lake with its intrinsic functions resolved, as CloudFormation would in one account, so its
policies can be evaluated: `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join` and `Fn::If` (on the conditions a
template declares with `Fn::Equals` of resolvable values), pseudo parameters, and SSM-typed parameters
whose defaults name the registry paths other stacks of the lake publish (`AWS::SSM::Parameter` Name/Value).

Physical ids are what AWS would give for the names the templates set (bucket, queue, role, ... names);
a resource without a name (a KMS key) gets a stable made-up id from its stack and logical id.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from cfn_tools import load_yaml

from sdlf_cli.render import RenderedTemplate

ACCOUNT = "123456789012"
PARTITION = "aws"


# Resource type -> (the property holding its name, its Ref and attributes), with {name}, {region},
# {account}, {partition} and {here} ("<region>:<account>") filled in as AWS forms them.
_ARN = "arn:{partition}:"
_NAMED: dict[str, tuple[str, dict[str, str]]] = {
    "AWS::S3::Bucket": ("BucketName", {"Ref": "{name}", "Arn": _ARN + "s3:::{name}"}),
    "AWS::SQS::Queue": ("QueueName", {"Ref": "https://sqs.{region}.amazonaws.com/{account}/{name}",
                                      "Arn": _ARN + "sqs:{here}:{name}", "QueueName": "{name}"}),
    "AWS::SNS::Topic": ("TopicName", {"Ref": _ARN + "sns:{here}:{name}", "TopicArn": _ARN + "sns:{here}:{name}"}),
    "AWS::IAM::Role": ("RoleName", {"Ref": "{name}", "Arn": _ARN + "iam::{account}:role/{name}"}),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", {"Ref": _ARN + "iam::{account}:policy/{name}",
                                                      "PolicyArn": _ARN + "iam::{account}:policy/{name}"}),
    "AWS::DynamoDB::Table": ("TableName", {"Ref": "{name}", "Arn": _ARN + "dynamodb:{here}:table/{name}"}),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", {
        "Ref": _ARN + "states:{here}:stateMachine:{name}", "Arn": _ARN + "states:{here}:stateMachine:{name}",
        "Name": "{name}"}),
    "AWS::Lambda::Function": ("FunctionName", {"Ref": "{name}", "Arn": _ARN + "lambda:{here}:function:{name}"}),
    "AWS::Lambda::LayerVersion": ("LayerName", {"Ref": _ARN + "lambda:{here}:layer:{name}:1",
                                                "LayerVersionArn": _ARN + "lambda:{here}:layer:{name}:1"}),
    "AWS::Logs::LogGroup": ("LogGroupName", {"Ref": "{name}", "Arn": _ARN + "logs:{here}:log-group:{name}:*"}),
    "AWS::Events::Rule": ("Name", {"Ref": "{name}", "Arn": _ARN + "events:{here}:rule/{name}"}),
    **{kind: ("Name", {"Ref": "{name}"}) for kind in (
        "AWS::Glue::Job", "AWS::Glue::Crawler", "AWS::Glue::SecurityConfiguration", "AWS::Athena::WorkGroup",
        "AWS::SSM::Parameter")},
}


class Unresolved(Exception):
    pass


@dataclass
class Stack:
    name: str
    layer: str
    template: dict
    region: str
    ssm: dict[str, str]  # the whole lake's registry: SSM name -> value (shared by every stack)
    _attrs: dict = field(default_factory=dict)

    # --- intrinsics -------------------------------------------------------------------------------
    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(i)) for i in items)
            if fn == "Fn::If":
                condition, yes, no = arg
                return self.resolve(yes if self.condition(condition) else no)
            if fn.startswith("Fn::"):
                raise Unresolved(f"{self.name}: {fn} is not resolved")
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        definition = self.template["Conditions"][name]
        (fn, arg), = definition.items()
        if fn == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if fn == "Fn::Not":
            return not self.condition_value(arg[0])
        if fn == "Fn::And":
            return all(self.condition_value(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.condition_value(a) for a in arg)
        raise Unresolved(f"{self.name}: condition {name} ({fn})")

    def condition_value(self, value) -> bool:
        return self.condition(value["Condition"]) if "Condition" in value else bool(self.resolve(value))

    def sub(self, arg) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(self.resolve(variables[expression]))
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def ref(self, name: str):
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": self.region, "AWS::Partition": PARTITION,
                  "AWS::StackName": self.name, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters") or {}
        if name in parameters:
            return self._parameter(name, parameters[name])
        return self._physical(name)["Ref"]

    def get_att(self, logical_id: str, attribute: str):
        attributes = self._physical(logical_id)
        if attribute not in attributes:
            raise Unresolved(f"{self.name}: {logical_id}.{attribute}")
        return attributes[attribute]

    def _parameter(self, name: str, definition: dict):
        default = definition.get("Default")
        if str(definition.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            if default not in self.ssm:
                raise Unresolved(f"{self.name}: {name} reads {default}, which no stack of the lake publishes")
            return self.ssm[default]
        if default is None:
            return f"<{name}>"  # a value the deployer passes (code keys, the artifact bucket)
        return default

    # --- physical ids ------------------------------------------------------------------------------
    def _physical(self, logical_id: str) -> dict:
        if logical_id in self._attrs:
            return self._attrs[logical_id]
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            raise Unresolved(f"{self.name}: no resource or parameter {logical_id}")
        props = resource.get("Properties") or {}
        kind = resource["Type"]
        region, here = self.region, f"{self.region}:{ACCOUNT}"

        def named(key: str) -> str:
            return str(self.resolve(props[key])) if key in props else f"{self.name}-{logical_id}"

        if kind in _NAMED:
            name_property, forms = _NAMED[kind]
            values = {"name": named(name_property), "region": region, "here": here, "account": ACCOUNT,
                      "partition": PARTITION}
            attrs = {attribute: form.format(**values) for attribute, form in forms.items()}
        elif kind == "AWS::KMS::Key":
            made_up = hashlib.sha256(f"{self.name}/{logical_id}".encode()).hexdigest()[:32]
            attrs = {"Ref": made_up, "Arn": f"arn:{PARTITION}:kms:{here}:key/{made_up}", "KeyId": made_up}
        elif kind == "AWS::Glue::Database":
            attrs = {"Ref": str(self.resolve(props["DatabaseInput"]["Name"]))}
        else:
            attrs = {"Ref": f"{self.name}-{logical_id}", "Arn": f"arn:{PARTITION}:unknown:{here}:{logical_id}"}
        self._attrs[logical_id] = attrs
        return attrs


@dataclass
class ResolvedLake:
    stacks: list[Stack]

    def stack(self, layer: str, name_suffix: str = "") -> Stack:
        (found,) = [s for s in self.stacks if s.layer == layer and s.name.endswith(name_suffix)]
        return found


def resolve_lake(templates: list[RenderedTemplate]) -> ResolvedLake:
    """Every stack of the lake, sharing one registry filled, parents first, by the stacks that publish it."""
    registry: dict[str, str] = {}
    stacks = [Stack(t.stack_name, t.layer.split("/")[-1], load_yaml(t.body), t.region, registry) for t in templates]
    pending = [s for s in stacks]
    # Publishers come before readers in layer order, but resolve in rounds so the order need not be known.
    for _ in range(len(LAYER_ORDER) + 1):
        left = []
        for stack in pending:
            try:
                for resource in stack.template["Resources"].values():
                    if resource["Type"] == "AWS::SSM::Parameter":
                        props = resource["Properties"]
                        registry[str(stack.resolve(props["Name"]))] = str(stack.resolve(props["Value"]))
            except Unresolved:
                stack._attrs.clear()
                left.append(stack)
        if not left:
            break
        pending = left
    return ResolvedLake(stacks)


LAYER_ORDER = ("bootstrap", "foundations", "team", "pipeline", "dataset", "cicd", "cicd-target")
