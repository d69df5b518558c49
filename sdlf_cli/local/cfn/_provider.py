"""Shared behaviour for the project's CloudFormation providers (moto `CloudFormationModel` subclasses).

moto finds resource types through `CloudFormationModel.__subclasses__()` - DIRECT subclasses only - so each
provider is declared as `class X(ProviderMixin, CloudFormationModel)`, never through an intermediate base.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar


class ProviderMixin:
    TYPE: ClassVar[str] = ""
    NAME_PROPERTY: ClassVar[str] = ""  # the template property holding the physical name, if any
    # GetAtt attribute -> function(self) returning its value
    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def cloudformation_type(cls) -> str:  # moto calls it on the class, with no arguments
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        getter = self.ATTRIBUTES.get(attribute_name)
        if getter is None:
            raise UnformattedGetAttTemplateException()
        return getter(self)

    def is_created(self) -> bool:
        return True

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        # Stacks delete through `resource.delete()`; this path is only hit for resources moto lost track of.
        raise NotImplementedError(f"{cls.TYPE} is deleted through its resource object")

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError

    @classmethod
    def renamed(cls, original_resource, name: str, cloudformation_json, account_id: str, region_name: str):
        """The replacement when an update gives the resource a new physical name, as CloudFormation makes it
        (the new one created, then the original deleted); None when the name is unchanged."""
        if name == original_resource.name:
            return None
        new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        original_resource.delete(account_id, region_name)
        return new

    @classmethod
    def replace(cls, original_resource, name: str, cloudformation_json, account_id: str, region_name: str):
        """An update by replacement: delete the original, then create `name` from the new template."""
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)


class NamedInRegion:
    """A provider's resource known by its name in one account and region (its physical id is the name).
    Listed before ProviderMixin in the bases, so the provider stays a direct subclass of CloudFormationModel."""

    def __init__(self, name: str, account_id: str, region_name: str):
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name


def tags_dict(tags: Any) -> dict[str, str]:
    """CloudFormation tags come as a list of {Key, Value} or (Glue) as a JSON object."""
    if not tags:
        return {}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: t["Value"] for t in tags}
