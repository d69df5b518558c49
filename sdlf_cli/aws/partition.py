"""Where a region's endpoints live: `amazonaws.com`, `amazonaws.com.cn` (China), ... from botocore's own
partition data, never hard-coded, so URLs built for CloudFormation work in every partition."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def dns_suffix(region: str) -> str:
    import botocore.session

    resolver = botocore.session.get_session().get_component("endpoint_resolver")
    try:
        partition = resolver.get_partition_for_region(region)
    except Exception:  # a region botocore does not know yet: the standard partition's pattern
        partition = "aws"
    return resolver.get_partition_dns_suffix(partition)


def s3_object_url(bucket: str, key: str, region: str) -> str:
    """The virtual-hosted HTTPS URL of an S3 object (what CloudFormation takes as a `TemplateURL`)."""
    return f"https://{bucket}.s3.{region}.{dns_suffix(region)}/{key}"
