"""The lake's AWS resources as the templates define them, for unit tests on moto's in-process backends."""
from __future__ import annotations


def create_dataset_table(client, name: str, range_key: str = "updated_at") -> None:
    """A lake table: hash key `id`, GSI `by-dataset` on (`dataset_id`, `range_key`) (catalog, executions)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "dataset_id", "AttributeType": "S"},
            {"AttributeName": range_key, "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-dataset",
                "KeySchema": [
                    {"AttributeName": "dataset_id", "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_versioned_buckets(s3, region: str, *buckets: str) -> None:
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def subscribe_inbox(sns, sqs, topic_arn: str) -> str:
    """People subscribe to a topic by email; a queue subscribed instead lets a test read what was published."""
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return inbox
