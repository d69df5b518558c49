"""Seam: conditional DynamoDB writes on the emulator are atomic across concurrent requests, as on AWS.

Many threads race to create the same item with `attribute_not_exists(id)`: exactly one may win.
"""
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.exceptions import ClientError


def test_only_one_conditional_create_wins(emulator):
    kwargs = dict(endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
    ddb = boto3.client("dynamodb", **kwargs)
    ddb.create_table(TableName="atomic-seam", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])

    def create(n: int, item: str) -> bool:
        client = boto3.client("dynamodb", **kwargs)
        try:
            client.update_item(TableName="atomic-seam", Key={"id": {"S": item}},
                               UpdateExpression="SET writer = :n",
                               ConditionExpression="attribute_not_exists(id)",
                               ExpressionAttributeValues={":n": {"N": str(n)}})
            return True
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    # Switch threads as often as possible, so an unlocked check-then-write interleaves.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            item = f"row-{round_}"
            with ThreadPoolExecutor(max_workers=8) as pool:
                wins = list(pool.map(lambda n: create(n, item), range(16)))
            assert sum(wins) == 1, f"{sum(wins)} writers passed attribute_not_exists({item})"
    finally:
        sys.setswitchinterval(previous)
