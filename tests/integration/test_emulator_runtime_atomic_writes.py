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

    # One client per writer, made before the race: making clients with a one-microsecond switch interval was
    # most of this test's time, and clients are not what it tests.
    writers = [boto3.client("dynamodb", **kwargs) for _ in range(16)]

    def create(n: int, item: str) -> bool:
        client = writers[n]
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


def test_a_read_never_sees_an_item_half_written(emulator):
    """moto creates a new item holding only its key, then applies the SET actions: a read answered in
    between returned a row without attributes every write sets (the catalog row without `status`)."""
    import threading

    from moto.dynamodb.parsing import executors

    kwargs = dict(endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
    ddb = boto3.client("dynamodb", **kwargs)
    ddb.create_table(TableName="isolation-seam", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    inside, release = threading.Event(), threading.Event()
    original = executors.UpdateExpressionExecutor.execute

    def paused_execute(self, *args, **kwargs):
        # Hold the write between "item stored with its key" and "attributes set".
        inside.set()
        release.wait(5)
        return original(self, *args, **kwargs)

    reads: dict[str, dict] = {}

    def read(action: str) -> None:
        client = boto3.client("dynamodb", **kwargs)
        if action == "get_item":
            reads[action] = client.get_item(TableName="isolation-seam", Key={"id": {"S": "row"}}).get("Item", {})
        else:
            items = client.scan(TableName="isolation-seam")["Items"]
            reads[action] = items[0] if items else {}

    executors.UpdateExpressionExecutor.execute = paused_execute
    try:
        writer = threading.Thread(target=lambda: boto3.client("dynamodb", **kwargs).update_item(
            TableName="isolation-seam", Key={"id": {"S": "row"}}, UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "RECEIVED"}}))
        writer.start()
        assert inside.wait(5)
        readers = [threading.Thread(target=read, args=(a,)) for a in ("get_item", "scan")]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(0.5)  # unisolated reads answer now, with the half-written row
    finally:
        release.set()
        executors.UpdateExpressionExecutor.execute = original
    writer.join(5)
    for reader in readers:
        reader.join(5)
    for action, item in reads.items():
        # Either before the write (nothing) or after it (the whole row), never in between.
        assert item == {} or item.get("status") == {"S": "RECEIVED"}, (action, item)
    assert set(reads) == {"get_item", "scan"}
