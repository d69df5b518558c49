"""The emulator's execution parts: what moto stores but does not run the way AWS does.

- lambda_hook / workers: Lambda functions on warm host-Python workers instead of Docker;
- sqs_poller: SQS event source mappings polled in batches with retries and DLQ, like Lambda's poller;
  sqs_queue_scans: moto's queue attributes and retention check without a rescan per message;
- kms_keys: a KMS key's private key (RSA for every symmetric key in moto) generated on first use, not at creation;
- cloudwatch_metric_queries: GetMetricData reading each query's metric a period at a time (moto's answers);
- s3_version_listing: ListObjectVersions without copying every object's bytes;
- serializer_aliases: moto's response serializer listing an attribute's possible names once per shape and class;
- events: EventBridge delivery to Lambda / Step Functions targets, schedule-only rules kept out of matching;
- scheduler (+ schedule_expressions): rate()/cron() rules fired by a clock;
- stepfunctions: fixes to moto's Step Functions interpreter; stepfunctions_parsing: a definition and a JSONPath
  parsed once per text; stepfunctions_lambda: a Lambda task's invoke answered in the process, authorized as the
  execution role;
- glue_jobs / crawler: Glue job runs executing their scripts, crawlers inferring Parquet tables;
  spark_class_archive: a Spark run's driver JVM starting from a class-data-sharing archive;
- atomic_writes: DynamoDB conditional writes atomic across moto's request threads, as on AWS;
- dynamodb_expressions: moto's UpdateItem validation in linear time (same answers, same errors);
  dynamodb_update_plans: and from a plan made once per expression, on the nodes its processors act on only;
  dynamodb_conditions: a condition's syntax once per text; dynamodb_item_sizes: the item size limit checked
  without rebuilding the item's attribute lists at every SET;
  dynamodb_responses: DynamoDB answers holding only JSON written with json.dumps (byte for byte moto's);
- request_routing: moto's server finds a request's backend once per host name, not once per request;
- gc_tuning: the emulator's process collects cyclic garbage less often (its many long-lived objects);
- codepipeline (+ codepipeline_api, pipeline_model, pipeline_actions, cicd_events): pipeline executions
  running their stages; codebuild (+ codebuild_api, buildspec, build_shell, build_python, build_artifacts,
  build_log, build_cache): CodeBuild builds running their buildspecs.

`install(ctx)` wires all of them into the running moto server and returns a stop function. It is
idempotent: a second call for the same emulator returns the first call's stop function.
"""
from __future__ import annotations

import threading
from typing import Callable

from sdlf_cli.local.context import EmulatorContext

_lock = threading.Lock()
_installed: dict[str, Callable[[], None]] = {}


def install(ctx: EmulatorContext) -> Callable[[], None]:
    with _lock:
        if "stop" in _installed:
            return _installed["stop"]

        from sdlf_cli.local.runtime import (alarms, atomic_writes, cloudwatch_metric_queries, codebuild_api,
                                            codepipeline, codepipeline_api, crawler, dynamodb_expressions,
                                            dynamodb_item_sizes, dynamodb_responses, dynamodb_update_plans, events,
                                            gc_tuning, glue_jobs, kms_keys, request_routing, s3_version_listing,
                                            serializer_aliases, sqs_queue_scans, stepfunctions,
                                            stepfunctions_lambda, stepfunctions_parsing)
        from sdlf_cli.local.runtime.lambda_hook import LambdaRuntime, install_lambda_hooks, uninstall_lambda_hooks
        from sdlf_cli.local.runtime.scheduler import Scheduler
        from sdlf_cli.local.runtime.sqs_poller import (SqsPoller, install_mapping_takeover, install_wake_on_send,
                                                        uninstall_wake_on_send)
        from sdlf_cli.local.runtime.workers import WorkerManager

        gc_tuning.install()
        atomic_writes.install()
        dynamodb_expressions.install()
        dynamodb_update_plans.install()
        dynamodb_item_sizes.install()
        dynamodb_responses.install()
        request_routing.install()
        sqs_queue_scans.install()
        kms_keys.install()
        cloudwatch_metric_queries.install()
        s3_version_listing.install()
        serializer_aliases.install()
        from sdlf_cli.local.iam.credentials import role_environment

        manager = WorkerManager(ctx.state_dir / "lambda", ctx.endpoint_url, role_environment)
        runtime = LambdaRuntime(manager, ctx.region)
        install_lambda_hooks(runtime)
        install_mapping_takeover()
        install_wake_on_send()
        events.install(runtime)
        stepfunctions.install(ctx)
        stepfunctions_parsing.install()
        stepfunctions_lambda.install()
        job_runner = glue_jobs.install(ctx)
        crawler_runner = crawler.install(ctx)
        build_runner = codebuild_api.install(ctx)
        pipeline_executor = codepipeline.PipelineExecutor(ctx, build_runner)
        codepipeline_api.install(pipeline_executor)
        poller = SqsPoller(runtime, ctx.account_id)
        poller.start()
        scheduler = Scheduler(ctx.account_id)
        scheduler.start()
        alarm_engine = alarms.AlarmEngine(alarms.endpoint_clients(ctx.endpoint_url, ctx.region), ctx.region,
                                          readings=alarms.BackendReadings(ctx.account_id, ctx.region))
        stop_observing = alarm_engine.observe_lambda(runtime)
        alarm_engine.start()

        def stop() -> None:
            with _lock:
                if _installed.get("stop") is not stop:
                    return
                _installed.pop("stop")
            stop_observing()
            alarm_engine.stop()
            scheduler.stop()
            poller.stop()
            uninstall_wake_on_send()
            codebuild_api.uninstall(build_runner)  # running builds end first, so executions waiting on them can end
            codepipeline_api.uninstall(pipeline_executor)
            crawler.uninstall(crawler_runner)
            glue_jobs.uninstall(job_runner)
            events.uninstall()
            uninstall_lambda_hooks()
            runtime.close()
            atomic_writes.uninstall()
            dynamodb_item_sizes.uninstall()
            dynamodb_update_plans.uninstall()
            dynamodb_expressions.uninstall()
            dynamodb_responses.uninstall()
            request_routing.uninstall()
            stepfunctions_parsing.uninstall()
            stepfunctions_lambda.uninstall()
            sqs_queue_scans.uninstall()
            kms_keys.uninstall()
            cloudwatch_metric_queries.uninstall()
            s3_version_listing.uninstall()
            serializer_aliases.uninstall()
            gc_tuning.uninstall()

        _installed["stop"] = stop
        _installed_parts.update(runtime=runtime, poller=poller, scheduler=scheduler, alarms=alarm_engine, glue_jobs=job_runner,
                               crawler=crawler_runner, codebuild=build_runner, codepipeline=pipeline_executor)
        return stop


_installed_parts: dict[str, object] = {}


def installed_part(name: str) -> object:
    """The live runtime/poller/scheduler of the installed emulator (for tests and diagnostics)."""
    return _installed_parts[name]
