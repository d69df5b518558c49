"""A dataset's SQL heavy transform: checked against the portable subset and translated for each engine.

Users write Spark SQL (the dialect of Glue ETL jobs). sqlglot parses it once; the statement must stay
inside a subset whose meaning DuckDB (the python engine) and Spark (the spark engine) share, so the same
SQL gives the same rows on both. Anything outside it is refused when the parameters file is validated,
naming the construct, never when a batch runs:

- one query: SELECT (DISTINCT), WITH, FROM `input` (and the query's own CTEs and subqueries), JOIN
  (inner, left, right, full, cross; ON or USING), WHERE, GROUP BY, HAVING, UNION/INTERSECT/EXCEPT,
  ORDER BY, LIMIT, column aliases, `struct.field`;
- operators: comparison, arithmetic (+ - * / %), AND/OR/NOT, IS [NOT] NULL, IN (list), BETWEEN, LIKE,
  CASE, string concatenation with concat/concat_ws;
- functions: count, sum, min, max, avg, coalesce, nvl, lower, upper, trim, substring, abs, round;
- CAST to string, bigint, int, double, boolean, date (Spark's cast: null where a value does not convert).
Left out because the engines' result types differ (bigint vs int): length, row_number, rank, dense_rank;
a script transform can use them. Decimal results are written as double on both engines.
"""
from __future__ import annotations

from dataclasses import dataclass

SOURCE_DIALECT = "spark"
INPUT_TABLE = "input"
CAST_TYPES = ("VARCHAR", "TEXT", "BIGINT", "INT", "DOUBLE", "BOOLEAN", "DATE")


class SqlSubsetError(ValueError):
    """The statement is not SQL, or is outside the portable subset; the message says which part."""


@dataclass(frozen=True)
class TranslatedSql:
    source: str
    duckdb: str
    spark: str


def _allowed():
    from sqlglot import exp

    structure = (
        exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
        exp.Union, exp.Intersect, exp.Except, exp.With, exp.CTE, exp.Subquery, exp.TableAlias, exp.Table,
        exp.Column, exp.Identifier, exp.Star, exp.Alias, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
        exp.Distinct, exp.Tuple, exp.Dot, exp.DataType,
    )
    operators = (
        exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
        exp.Between, exp.Like, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Case, exp.If,
        exp.Cast, exp.TryCast,
    )
    functions = (
        exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Coalesce, exp.Lower, exp.Upper, exp.Trim,
        exp.Substring, exp.Abs, exp.Round, exp.Concat, exp.ConcatWs,
    )
    return structure + operators + functions, set()


def _describe(node) -> str:
    from sqlglot import exp

    if isinstance(node, (exp.Anonymous, exp.Func)):
        return f"function {node.sql(dialect=SOURCE_DIALECT).split('(')[0]!r}"
    return f"{node.key.upper()} ({node.sql(dialect=SOURCE_DIALECT)[:60]!r})"


def translate(sql: str) -> TranslatedSql:
    """The statement for DuckDB and for Spark, or SqlSubsetError saying what is outside the subset."""
    import sqlglot
    from sqlglot import ErrorLevel, exp
    from sqlglot.errors import ParseError, UnsupportedError

    if not isinstance(sql, str) or not sql.strip():
        raise SqlSubsetError("expected a SELECT statement reading from `input`")
    try:
        statements = [s for s in sqlglot.parse(sql, read=SOURCE_DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
        raise SqlSubsetError(f"not valid Spark SQL{where}: {first.get('description') or exc}") from None
    if len(statements) != 1:
        raise SqlSubsetError(f"expected one statement, got {len(statements)}")
    (tree,) = statements
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        raise SqlSubsetError(f"expected a query (SELECT ...), got {tree.key.upper()}")
    allowed, named = _allowed()
    for node in tree.walk():
        if isinstance(node, exp.Anonymous) and node.name.upper() in named:
            continue
        if not isinstance(node, allowed):
            raise SqlSubsetError(f"{_describe(node)} is outside the SQL both engines run alike; "
                                 "use a script transform for it")
        if isinstance(node, (exp.Cast, exp.TryCast)):
            target = node.to.sql(dialect="duckdb").upper()
            if target not in CAST_TYPES:
                raise SqlSubsetError(f"CAST to {target} is outside the SQL both engines run alike "
                                     f"(casts to: string, bigint, int, double, boolean, date)")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name not in ctes and (table.name != INPUT_TABLE or table.db or table.catalog):
            raise SqlSubsetError(f"reads table {table.sql(dialect=SOURCE_DIALECT)!r}; a heavy transform reads "
                                 f"only `{INPUT_TABLE}` (the batch) and its own WITH queries")
    try:
        duckdb = sqlglot.transpile(sql, read=SOURCE_DIALECT, write="duckdb", unsupported_level=ErrorLevel.RAISE)[0]
        spark = sqlglot.transpile(sql, read=SOURCE_DIALECT, write="spark", unsupported_level=ErrorLevel.RAISE)[0]
    except UnsupportedError as exc:
        raise SqlSubsetError(f"cannot be translated for both engines: {exc}") from None
    return TranslatedSql(source=sql, duckdb=duckdb, spark=spark)
