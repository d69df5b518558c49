"""Heavy transform of the legislators sample (SDLF's workshop example): one denormalised table.

A batch holds persons, memberships and organizations objects (stage-A JSON lines of
samples/engineering/legislators_history/). Each row of `input` carries `_source_object`, the stage
object it came from, which says what kind of record it is. Out come two tables:

  history  one row per membership, with the person, the chamber and the party it was on behalf of
  persons  the persons of the batch

The interface (glue/heavy_transform.py calls it on either engine): transform(batch, context) gets the
batch as a pyarrow.Table (python engine) or a Spark DataFrame (spark engine) and returns
{table name: table} of the same kind. context.sql(query, name=table, ...) runs SQL on the engine's own
SQL (DuckDB or Spark SQL), so this script runs unchanged on both: it keeps to SQL both read alike.
Runs on Glue Python shell 3.9 and Glue 5.0 (Python 3.11).
"""

KINDS = """
WITH persons AS (SELECT * FROM input WHERE _source_object LIKE '%/persons%'),
     memberships AS (SELECT * FROM input WHERE _source_object LIKE '%/memberships%'),
     organizations AS (SELECT * FROM input WHERE _source_object LIKE '%/organizations%')
"""

HISTORY = KINDS + """
SELECT p.id AS person_id, p.name, p.gender, p.birth_date,
       m.role, m.legislative_period_id, m.start_date, m.area_id,
       o.name AS org_name, o.classification AS org_classification, party.name AS party
FROM memberships m
JOIN persons p ON p.id = m.person_id
JOIN organizations o ON o.id = m.organization_id
LEFT JOIN organizations party ON party.id = m.on_behalf_of_id
"""

PERSONS = KINDS + """
SELECT id, name, given_name, family_name, gender, birth_date FROM persons
"""


def transform(batch, context):
    return {
        "history": context.sql(HISTORY, input=batch),
        "persons": context.sql(PERSONS, input=batch),
    }
