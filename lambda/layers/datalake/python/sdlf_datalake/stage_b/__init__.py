"""Stage B of a pipeline, scheduled, one batch of a dataset's stage objects per execution, in three modules of
the same shape as stage A's:

- `routing` (lambda/routing-b): up to batch.max_items messages of the dataset's stage-B queue to one batch
  manifest and one Step Functions execution, started BEFORE the messages are deleted; a batch below
  batch.min_items (unless forced) is released untouched. Batch id and execution name come from the batch's
  content, so starting the same batch twice is a no-op; a hand-off whose content a batch already put (or is
  putting) in the analytics table is deleted, not batched again.
- `steps` (lambda/transform-b): the execution's pre- and post-update around the Glue job, crawler and quality.
- `failures` (lambda/error-b): a failed batch's objects marked FAILED, its messages parked in the dataset's
  DLQ, the team told.

Each has a `...Config.from_env()`; the handlers are thin shells over them.

Execution input (what routing passes to StartExecution):
  {"team", "dataset", "batch_id", "manifest": "s3://<stage>/T/D/_batches/<id>/manifest.json",
   "job", "quality_job", "crawler", "engine", "execution": "<execution name>"}
"""
STAGE = "b"
