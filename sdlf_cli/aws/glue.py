"""The Glue Data Catalog: databases and tables."""
from __future__ import annotations

from typing import Any

from sdlf_cli.aws.gateway import Gateway
from sdlf_cli.errors import NotFound


class GlueCatalog(Gateway):
    service = "glue"

    def databases(self) -> set[str]:
        return {d["Name"] for d in self._pages("get_databases", "DatabaseList")}

    def tables(self, database: str) -> list[str]:
        return sorted(t["Name"] for t in self._pages("get_tables", "TableList", DatabaseName=database))

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("get_table", DatabaseName=database, Name=name)["Table"]
        except NotFound:
            return None
