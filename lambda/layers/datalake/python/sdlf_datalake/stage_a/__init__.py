"""Stage A of a pipeline, event-driven, one object per execution, in three modules of the same shape as
stage B's:

- `routing` (lambda/routing-a): each raw object's S3 event to one Step Functions execution, named after the
  object's content, so a redelivered event or an identical re-upload never runs twice.
- `steps` (lambda/transform-a): the execution's pre-update, light transform and post-update (+ lineage, and the
  hand-off to the dataset's stage-B queue).
- `failures` (lambda/error-a): a failed execution's object marked FAILED, its event to the pipeline's DLQ, the
  team told.

Each has a `...Config.from_env()`; the handlers are thin shells over them.

Execution input (what routing passes to StartExecution):
  {"object": {"bucket", "key", "uri", "etag", "version_id", "size", "sequencer", "team", "dataset",
              "pipeline"}, "execution": "<execution name>"}
"""
STAGE = "a"
