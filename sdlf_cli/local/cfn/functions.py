"""Lambda fixes: CloudFormation-created functions and layer versions look exactly like API-created ones.

moto's `AWS::Lambda::Function` passes only a few properties to `create_function` and drops `Layers` (the
warm-worker runtime reads `LambdaFunction.layers` to build the import path). `AWS::Lambda::LayerVersion`
ignores `LayerName`, has no `Ref` value (the object itself leaks into templates) and no update.
"""
from __future__ import annotations

from typing import Any

from sdlf_cli.local.cfn._patching import Patch, install, wrap

# Properties the Lambda API's CreateFunction accepts under the same name as CloudFormation.
_PASSTHROUGH = (
    "Description", "MemorySize", "Publish", "Timeout", "VpcConfig", "Environment", "ReservedConcurrentExecutions",
    "Layers", "Architectures", "TracingConfig", "EphemeralStorage", "PackageType", "ImageConfig",
    "DeadLetterConfig", "LoggingConfig",
)


def _function_spec(resource_name: str, properties: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Code": dict(properties["Code"]),
        "FunctionName": resource_name,
        "Handler": properties.get("Handler"),
        "Role": properties["Role"],
        "Runtime": properties.get("Runtime"),
    }
    for prop in _PASSTHROUGH:
        if prop in properties:
            spec[prop] = properties[prop]
    if "KmsKeyArn" in properties:
        spec["KMSKeyArn"] = properties["KmsKeyArn"]  # CloudFormation spells it KmsKeyArn, the API KMSKeyArn
    if "Tags" in properties:
        spec["Tags"] = {t["Key"]: t["Value"] for t in properties["Tags"]}
    return spec


def _make_function_create(original):
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        import base64

        from moto.awslambda.models import get_backend

        properties = cloudformation_json["Properties"]
        spec = _function_spec(resource_name, properties)
        if "ZipFile" in spec["Code"]:
            # Inline code in a template is plain text; the API takes a zip (as moto's own version does).
            spec["Code"]["ZipFile"] = base64.b64encode(cls._create_zipfile_from_plaintext_code(spec["Code"]["ZipFile"]))
        return get_backend(account_id, region_name).create_function(spec)

    return classmethod(create_from_cloudformation_json)


def _make_function_update(original):
    update = original.__func__

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        properties = cloudformation_json["Properties"]
        if properties.get("FunctionName", original_resource.function_name) != original_resource.function_name:
            # A new name means a new function in AWS (replacement).
            new = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        fn = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        # Properties removed from the template go back to their defaults, as in AWS.
        if "Layers" not in properties:
            fn.layers = []
        if "Environment" not in properties:
            fn.environment_vars = {}
        if "KmsKeyArn" in properties:
            fn.kms_key_arn = properties["KmsKeyArn"]
        return fn

    return classmethod(update_from_cloudformation_json)


# --- LayerVersion ---------------------------------------------------------------------------------------
def _layer_physical_resource_id(self) -> str:
    return self.arn  # Ref on AWS::Lambda::LayerVersion is the layer version ARN


def _layer_has_cfn_attr(cls, attr: str) -> bool:
    return attr == "LayerVersionArn"


def _layer_get_cfn_attribute(self, attribute_name: str) -> str:
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    if attribute_name == "LayerVersionArn":
        return self.arn
    raise UnformattedGetAttTemplateException()


def _make_layer_create(original):
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.awslambda.models import get_backend

        properties = cloudformation_json["Properties"]
        spec = {"Content": properties["Content"], "LayerName": properties.get("LayerName", resource_name)}
        for prop in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if prop in properties:
                spec[prop] = properties[prop]
        return get_backend(account_id, region_name).publish_layer_version(spec)

    return classmethod(create_from_cloudformation_json)


def _layer_delete(self, account_id: str, region_name: str) -> None:
    from moto.awslambda.models import get_backend

    try:
        get_backend(account_id, region_name).delete_layer_version(self.name, str(self.version))
    except Exception:  # already gone
        pass


def install_function_fixes() -> None:
    from moto.awslambda import models

    wrap(models.LambdaFunction, "create_from_cloudformation_json", "lambda.function-all-properties", _make_function_create)
    wrap(models.LambdaFunction, "update_from_cloudformation_json", "lambda.function-update", _make_function_update)
    install(Patch("lambda.layer-ref", models.LayerVersion, "physical_resource_id", property(_layer_physical_resource_id)))
    install(Patch("lambda.layer-getatt", models.LayerVersion, "get_cfn_attribute", _layer_get_cfn_attribute))
    install(Patch("lambda.layer-has-getatt", models.LayerVersion, "has_cfn_attr", classmethod(_layer_has_cfn_attr)))
    install(Patch("lambda.layer-name", models.LayerVersion, "cloudformation_name_type", staticmethod(lambda: "LayerName")))
    wrap(models.LayerVersion, "create_from_cloudformation_json", "lambda.layer-create", _make_layer_create)
    install(Patch("lambda.layer-delete", models.LayerVersion, "delete", _layer_delete))
