"""Providers for AWS::SQS::QueuePolicy, AWS::SNS::TopicPolicy and AWS::SNS::Subscription (moto skips them).

A queue policy really sets the queue's `Policy` attribute (the catalog queue only accepts EventBridge
through it); a topic policy sets the topic's `Policy`; a subscription subscribes through moto's SNS backend.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

from moto.core.common_models import CloudFormationModel

from sdlf_cli.local.cfn._provider import ProviderMixin


def _policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _sqs(account_id: str, region_name: str):
    from moto.sqs.models import sqs_backends

    return sqs_backends[account_id][region_name]


def _sns(account_id: str, region_name: str):
    from moto.sns.models import sns_backends

    return sns_backends[account_id][region_name]


def queue_name_from_url(url: str) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name>  or  http://127.0.0.1:<port>/<account>/<name>
    return url.rstrip("/").rsplit("/", 1)[-1]


class _Policy(ProviderMixin):
    """A policy document set on each of the resources the TARGETS property lists; a target dropped by an
    update gets CLEARED (what `_set` takes for "no policy of ours")."""

    ATTRIBUTES = {"Id": lambda self: self.resource_id}
    TARGETS: ClassVar[str] = ""
    CLEARED: ClassVar[str | None] = None

    def __init__(self, resource_id: str, targets: list[str]):
        self.resource_id = resource_id
        self.targets = targets

    @property
    def physical_resource_id(self) -> str:
        return self.resource_id

    @staticmethod
    def _set(targets: list[str], policy: str | None, account_id: str, region_name: str) -> None:
        raise NotImplementedError

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        targets = list(props[cls.TARGETS])
        cls._set(targets, _policy_text(props["PolicyDocument"]), account_id, region_name)
        return cls(resource_name, targets)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        targets = list(props[cls.TARGETS])
        dropped = [t for t in original_resource.targets if t not in targets]
        cls._set(dropped, cls.CLEARED, account_id, region_name)
        cls._set(targets, _policy_text(props["PolicyDocument"]), account_id, region_name)
        return cls(original_resource.resource_id, targets)


class QueuePolicy(_Policy, CloudFormationModel):
    TYPE = "AWS::SQS::QueuePolicy"
    TARGETS, CLEARED = "Queues", ""

    @staticmethod
    def _set(queue_urls: list[str], policy: str, account_id: str, region_name: str) -> None:
        backend = _sqs(account_id, region_name)
        for url in queue_urls:
            backend.set_queue_attributes(queue_name_from_url(url), {"Policy": policy})

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _sqs(account_id, region_name)
        for url in self.targets:
            name = queue_name_from_url(url)
            if name in backend.queues:  # the queue may already be gone
                backend.set_queue_attributes(name, {"Policy": ""})


class TopicPolicy(_Policy, CloudFormationModel):
    TYPE = "AWS::SNS::TopicPolicy"
    TARGETS, CLEARED = "Topics", None  # None: back to the topic's default policy

    @staticmethod
    def _set(topic_arns: list[str], policy: str | None, account_id: str, region_name: str) -> None:
        backend = _sns(account_id, region_name)
        for arn in topic_arns:
            topic = backend.topics.get(arn)
            if topic is None:
                if policy is None:
                    continue
                backend.get_topic(arn)  # raises NotFound with the ARN
            if policy is None:
                topic._policy_json = topic._create_default_topic_policy(region_name, account_id, topic.name)
            else:
                topic.policy = policy

    def delete(self, account_id: str, region_name: str) -> None:
        self._set(self.targets, None, account_id, region_name)


_SUBSCRIPTION_ATTRIBUTES = ("RawMessageDelivery", "DeliveryPolicy", "FilterPolicyScope", "FilterPolicy", "RedrivePolicy")


class SnsSubscription(ProviderMixin, CloudFormationModel):
    TYPE = "AWS::SNS::Subscription"
    ATTRIBUTES = {"Arn": lambda self: self.arn}

    def __init__(self, arn: str, identity: tuple[str, str, str]):
        self.arn = arn
        self.identity = identity  # (topic, protocol, endpoint): changing any replaces the subscription

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def _identity(props: dict[str, Any]) -> tuple[str, str, str]:
        return props["TopicArn"], props["Protocol"], props.get("Endpoint", "")

    @staticmethod
    def _set_attributes(arn: str, props: dict[str, Any], account_id: str, region_name: str) -> None:
        backend = _sns(account_id, region_name)
        for name in _SUBSCRIPTION_ATTRIBUTES:  # scope before policy: the policy is validated against it
            if name in props:
                value = props[name]
                if name == "RawMessageDelivery":
                    value = str(value).lower() == "true"  # stored as a bool, as moto's API layer does
                elif isinstance(value, (dict, list)):
                    value = json.dumps(value)
                backend.set_subscription_attributes(arn, name, value)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        topic_arn, protocol, endpoint = cls._identity(props)
        subscription = _sns(account_id, region_name).subscribe(topic_arn, endpoint, protocol)
        cls._set_attributes(subscription.arn, props, account_id, region_name)
        return cls(subscription.arn, (topic_arn, protocol, endpoint))

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        props = cloudformation_json["Properties"]
        if cls._identity(props) != original_resource.identity:
            new = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return new
        cls._set_attributes(original_resource.arn, props, account_id, region_name)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        _sns(account_id, region_name).unsubscribe(self.arn)


PROVIDERS = [QueuePolicy, TopicPolicy, SnsSubscription]
