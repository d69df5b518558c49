"""Athena: start a query in a workgroup, follow it, read its result pages."""
from __future__ import annotations

from collections.abc import Iterator

from sdlf_cli.aws.gateway import Gateway


class Athena(Gateway):
    service = "athena"

    def start(self, sql: str, workgroup: str) -> str:
        return self._call("start_query_execution", QueryString=sql, WorkGroup=workgroup)["QueryExecutionId"]

    def execution(self, query_id: str) -> dict:
        return self._call("get_query_execution", QueryExecutionId=query_id)["QueryExecution"]

    def stop(self, query_id: str) -> None:
        self._call("stop_query_execution", QueryExecutionId=query_id)

    def result_sets(self, query_id: str) -> Iterator[dict]:
        for page in self._whole_pages("get_query_results", QueryExecutionId=query_id):
            yield page["ResultSet"]
