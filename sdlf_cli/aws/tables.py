"""DynamoDB: the lake's tables (catalog, executions, quality) read as plain JSON-friendly rows."""
from __future__ import annotations

from boto3.dynamodb.types import TypeDeserializer

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import NotFound

_deserialize = TypeDeserializer().deserialize


def _python(value):
    """DynamoDB's Decimals and sets as plain JSON-friendly values, all the way down."""
    if hasattr(value, "to_integral_value"):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_python(v) for v in value]
    return value


def plain(item: dict) -> dict:
    return {k: _python(_deserialize(v)) for k, v in item.items()}


class Tables(Gateway):
    service = "dynamodb"

    def get(self, table: str, ident: str) -> dict | None:
        """The row whose key `id` is `ident` (read consistently), or None."""
        item = self._call("get_item", TableName=table, Key={"id": {"S": ident}}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def by_index(self, table: str, index: str, attribute: str, value: str) -> list[dict]:
        """Every row whose `attribute` (the hash key of the index) is `value`, page by page: a query, not a scan."""
        return [plain(item) for item in self._pages(
            "query", "Items", TableName=table, IndexName=index, KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": attribute}, ExpressionAttributeValues={":v": {"S": value}})]

    def scan(self, table: str) -> list[dict]:
        return [plain(item) for item in self._pages("scan", "Items", TableName=table, ConsistentRead=True)]

    def newest(self, table: str, ident: str, limit: int) -> list[dict]:
        """The newest `limit` rows of a table keyed by (`id`, sort key), newest first."""
        response = self._call("query", TableName=table, KeyConditionExpression="id = :id",
                              ExpressionAttributeValues={":id": {"S": ident}}, ScanIndexForward=False, Limit=limit)
        return [plain(item) for item in response["Items"]]

    def exists(self, table: str) -> bool:
        try:
            self._call("describe_table", TableName=table)
        except NotFound:
            return False
        return True

    def delete(self, table: str) -> None:
        self._call("delete_table", TableName=table)
