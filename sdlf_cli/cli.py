"""The `sdlf` command line: thin commands that parse, call one workflow, and return its result.

`options.global_options` hands each command its options and its `Lake` (built once, lazily: nothing is read or
called before the command's arguments and the parameters files are checked), and prints what the command returns
through `ui.output.emit`, which also picks the exit code.
"""
from __future__ import annotations

import atexit
import gc
import logging
import sys
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError

from sdlf_cli.errors import SdlfError
from sdlf_cli.options import Invocation, defaults, global_options

log = logging.getLogger("sdlf.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(package_name="sdlf")
@click.pass_context
def cli(ctx, opts):
    """sdlf: a serverless data lake on AWS, as readable CloudFormation, with an embedded local AWS."""
    invocation = ctx.find_object(Invocation) or Invocation(defaults())
    ctx.obj = Invocation(opts, invocation.make_lake)


# --- the embedded emulator -------------------------------------------------------------------------
@cli.group()
def local():
    """The embedded local AWS (a background process on 127.0.0.1)."""


@local.command("up")
@click.option("--port", type=int, default=None, help="Port (default 4566, or a free one).")
@click.option("--faults", default=None, metavar="SPEC",
              help="Fail on purpose at these rates, e.g. lambda_error=0.2,throttle=0.05,duplicate=0.1 "
                   "(kinds: lambda_error, lambda_timeout, partial_write, throttle, glue_error, duplicate, delay); "
                   "every fault is logged to .sdlf/local/faults.jsonl.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault injection.")
@click.option("--iam", type=click.Choice(["on", "off"]), default=None,
              help="Enforce the identity policies of the lake's roles on its Lambda functions, state machines, "
                   "Glue jobs and crawlers (default: the emulator's, see README).")
@click.option("--persist", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="Restore the state saved in .sdlf/local/ and answer each change once it is saved there "
                   "(off: state in memory only, gone with `sdlf local down`; faster).")
@global_options
def local_up(port, faults, seed, iam, persist, opts):
    """Start the emulator (a no-op when it already runs)."""
    from sdlf_cli.local import process

    return process.up(None, port=port, faults=faults, seed=seed, iam=None if iam is None else iam == "on",
                      persist=persist == "on")


@local.command("down")
@global_options
def local_down(opts):
    """Stop the emulator; its state stays saved in the state folder and the next `up` restores it."""
    from sdlf_cli.local import process

    return process.down(None)


@local.command("reset")
@global_options
def local_reset(opts):
    """Remove the emulator's saved state (a running emulator starts again, empty, on its port)."""
    from sdlf_cli.local import process

    return process.reset(None)


@local.command("status")
@global_options
def local_status(opts):
    """Show whether the emulator runs, where, and its log file."""
    from sdlf_cli.local import process

    return process.status(None)


# --- configuration, render, lint, package ---------------------------------------------------------
@cli.group()
def config():
    """The resolved configuration of one environment."""


@config.command("show")
@global_options
def config_show(opts, lake):
    """Print every resolved value and the file:line it came from."""
    from sdlf_cli.config.show import show_rows

    return show_rows(lake.config)


@cli.command()
@click.argument("layer", required=False)
@click.option("--build-dir", type=click.Path(path_type=Path), default=None, help="Default .sdlf/build/<env>.")
@global_options
def render(layer, build_dir, opts, lake):
    """Render templates (all layers, or LAYER) into the build folder."""
    from sdlf_cli.workflows.build import render_to

    return render_to(lake.config, layer, build_dir or Path(".sdlf/build") / lake.config.env)


@cli.command()
@click.argument("layer", required=False)
@click.option("--show-skips", is_flag=True, help="List every check the templates skip, with its reason.")
@global_options
def lint(layer, show_skips, opts, lake):
    """Run cfn-lint and checkov on every rendered template; exit 1 on any finding."""
    from sdlf_cli.workflows.build import lint_layers

    return lint_layers(lake.config, layer, show_skips=show_skips)


@cli.command()
@global_options
def package(opts, lake):
    """Zip Lambda code deterministically; upload what the artifact bucket lacks."""
    from sdlf_cli.workflows.build import package_artifacts

    return package_artifacts(lake)


_CFN_ROLE = click.option("--cfn-role-arn", default=None, envvar="SDLF_CFN_ROLE_ARN",
                         help="CloudFormation execution role for the change sets [env SDLF_CFN_ROLE_ARN].")


# --- deploy ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--all", "all_layers", is_flag=True, help="Every stack the parameters file declares.")
@click.option("--dry-run", is_flag=True, help="Plan change sets without executing anything.")
@_CFN_ROLE
@global_options
def deploy(layers, all_layers, dry_run, cfn_role_arn, opts, lake):
    """Create or update stacks (parents first, independent stacks in parallel)."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import deploy_layers, layers_to_deploy

    chosen = layers_to_deploy(lake.config, list(layers), all_layers)
    with make_reporter(opts.output) as reporter:
        return deploy_layers(lake, reporter, chosen, dry_run=dry_run, cfn_role_arn=cfn_role_arn)


@cli.command()
@click.argument("layers", nargs=-1)
@_CFN_ROLE
@global_options
def plan(layers, cfn_role_arn, opts, lake):
    """What `deploy` would change (change sets, created and deleted again)."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import deploy_layers, layers_to_deploy

    chosen = layers_to_deploy(lake.config, list(layers), not layers)
    with make_reporter(opts.output) as reporter:
        return deploy_layers(lake, reporter, chosen, dry_run=True, cfn_role_arn=cfn_role_arn)


# --- onboarding ----------------------------------------------------------------------------------
def _add(opts, lake, addition):
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.onboard import add_and_deploy

    with make_reporter(opts.output) as reporter:
        return add_and_deploy(lake, opts.parameters_dir, addition, reporter)


@cli.command("add-team")
@click.argument("team")
@click.option("--email", default=None, help="Notification email of the team.")
@global_options
def add_team(team, email, opts, lake):
    """Add TEAM to parameters/<env>.yaml and deploy its stack."""
    from sdlf_cli.workflows.onboard import Addition

    return _add(opts, lake, Addition("team", team, team, email=email))


@cli.command("add-pipeline")
@click.argument("team")
@click.argument("pipeline")
@global_options
def add_pipeline(team, pipeline, opts, lake):
    """Add PIPELINE to TEAM and deploy it (and the team's stack if missing)."""
    from sdlf_cli.workflows.onboard import Addition

    return _add(opts, lake, Addition("pipeline", team, pipeline))


@cli.command("add-dataset")
@click.argument("team")
@click.argument("dataset")
@click.option("--pipeline", required=True, help="The team's pipeline that processes it.")
@click.option("--transform", default=None, help="Stage-A light transform (default: default).")
@click.option("--engine", type=click.Choice(["python", "spark"]), default=None, help="Stage-B engine.")
@click.option("--schedule", default=None, help="Stage-B schedule, rate(...) or cron(...).")
@global_options
def add_dataset(team, dataset, pipeline, transform, engine, schedule, opts, lake):
    """Add DATASET to TEAM and deploy it (and missing parent stacks)."""
    from sdlf_cli.workflows.onboard import Addition

    settings = {k: v for k, v in {"transform": transform, "engine": engine, "schedule": schedule}.items() if v}
    return _add(opts, lake, Addition("dataset", team, dataset, pipeline=pipeline, settings=settings))


# --- data ------------------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--wait/--no-wait", default=True, help="Wait for the catalog rows.")
@global_options
def ingest(files, team, dataset, wait, opts, lake):
    """Upload FILES to the raw bucket under <team>/<dataset>/."""
    from sdlf_cli.workflows.ingest import ingest_and_track

    return ingest_and_track(lake, list(files), team, dataset, wait=wait)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--uri", default=None, help="One object, s3://bucket/key.")
@global_options
def catalog(team, dataset, uri, opts, lake):
    """Rows of the object catalog, newest first."""
    from sdlf_cli.workflows.ingest import catalog_rows

    return catalog_rows(lake, team=team, dataset=dataset, uri=uri)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--limit", default=20, show_default=True)
@global_options
def runs(team, dataset, limit, opts, lake):
    """Recent pipeline executions: status, duration, object counts, error."""
    from sdlf_cli.workflows.observe import recent_runs

    return recent_runs(lake, team=team, dataset=dataset, limit=limit)


@cli.command()
@click.argument("uri")
@global_options
def trace(uri, opts, lake):
    """One object's journey: catalog rows, sources, outputs, executions, error."""
    from sdlf_cli.workflows.observe import trace_object

    return trace_object(lake, uri)


@cli.command("run-stage-b")
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--wait/--no-wait", default=True, help="Wait for the batch's execution to finish.")
@global_options
def run_stage_b(team, dataset, wait, opts, lake):
    """Start a stage-B batch of DATASET now (whatever its schedule and minimum batch size)."""
    from sdlf_cli.workflows.stage_b import run_stage_b as run

    return run(lake, team, dataset, wait=wait)


@cli.command()
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--runs", "count", default=1, show_default=True, help="How many recent runs to show.")
@global_options
def quality(team, dataset, count, opts, lake):
    """Latest data-quality results of a dataset (per rule: status, observed value)."""
    from sdlf_cli.workflows.stage_b import latest_quality

    return latest_quality(lake, team, dataset, runs=count)


# --- dead letters ----------------------------------------------------------------------------------
@cli.command("dead-letters")
@click.option("--team", default=None)
@click.option("--pipeline", default=None)
@click.option("--dataset", default=None)
@click.option("--stage", type=click.Choice(["catalog", "a", "b", "routing-b"]), default=None)
@global_options
def dead_letters(team, pipeline, dataset, stage, opts, lake):
    """The lake's dead-letter queues (catalog, stage A and stage-B routing per pipeline, stage B per dataset) and
    their counts."""
    from sdlf_cli.workflows.redrive import list_dead_letters

    return list_dead_letters(lake, team=team, pipeline=pipeline, dataset=dataset, stage=stage)


@cli.command()
@click.option("--team", default=None)
@click.option("--pipeline", default=None,
              help="Only the DLQs of this pipeline (its stage A, its stage-B routing and its datasets' stage B).")
@click.option("--dataset", default=None)
@click.option("--stage", type=click.Choice(["catalog", "a", "b", "routing-b"]), default=None,
              help="Only this kind of DLQ (routing-b: schedule events the stage-B router failed on).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Move at most N messages.")
@click.option("--dry-run", is_flag=True, help="List what would move; move nothing.")
@global_options
def redrive(team, pipeline, dataset, stage, limit, dry_run, opts, lake):
    """Move every message of the selected DLQs back to its stage (send first, then delete); exit 1 if any failed."""
    from sdlf_cli.workflows.redrive import redrive as run

    return run(lake, team=team, pipeline=pipeline, dataset=dataset, stage=stage, limit=limit, dry_run=dry_run)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--stale-after", type=float, default=900.0, show_default=True,
              help="Seconds an object may wait with nothing queued for it before it counts as lost.")
@global_options
def audit(team, dataset, stale_after, opts, lake):
    """Reconcile the lake: every raw object version's state; exit 1 if anything is lost or duplicated."""
    from sdlf_cli.workflows.audit import audit as run

    return run(lake, team=team, dataset=dataset, stale_after=stale_after)


@cli.command()
@click.argument("sql")
@click.option("--team", default=None, help="Run in the team's Athena workgroup.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default=None,
              help="Result format (default: --output).")
@global_options
def query(sql, team, fmt, opts, lake):
    """Run SQL on the lake: Athena on AWS, DuckDB over the analytics Parquet on the emulator."""
    from sdlf_cli.ui.output import Formatted
    from sdlf_cli.workflows.query import run_query

    return Formatted(run_query(lake, sql, team=team), fmt or opts.output)


@cli.command()
@global_options
def demo(opts, lake):
    """From nothing to a queried analytics table on the embedded emulator, in one command."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.ui.text import demo_step
    from sdlf_cli.workflows.demo import run_demo

    # The demo's own step lines are its progress view; stack events would drown them.
    with make_reporter("json") as reporter:
        return run_demo(lake, reporter, on_step=demo_step if opts.output != "json" else (lambda step: None))


# --- the delivery pipeline -------------------------------------------------------------------------
@cli.group()
def cicd():
    """The delivery pipeline: push a revision, follow it, approve or reject a promotion."""


def _on_change(opts):
    from sdlf_cli.ui.delivery import action_line

    return (lambda action: None) if opts.output == "json" else (lambda action: click.echo(action_line(action)))


@cicd.command("push")
@click.option("--follow", "following", is_flag=True, help="Stream until the run ends or waits for an approval.")
@global_options
def cicd_push(following, opts, lake):
    """Upload the working tree (the files git tracks) as the S3 source revision and start the pipeline."""
    from sdlf_cli.workflows.cicd import push

    return push(lake, wait=following, on_change=_on_change(opts))


@cicd.command("status")
@click.option("--follow", "following", is_flag=True, help="Stream until the run ends or waits for an approval.")
@global_options
def cicd_status(following, opts, lake):
    """The latest execution: each stage and action, its state and duration; for a failure its root cause."""
    from sdlf_cli.workflows.cicd import follow, pipeline_status

    return follow(lake, on_change=_on_change(opts)) if following else pipeline_status(lake)


@cicd.command("approve")
@click.option("--summary", default=None, help="Why (recorded with the approval).")
@global_options
def cicd_approve(summary, opts, lake):
    """Approve the promotion waiting for --env (or the only one waiting)."""
    from sdlf_cli.workflows.cicd import decide

    return decide(lake, opts.env, True, summary or "")


@cicd.command("reject")
@click.option("--summary", default=None, help="Why (recorded with the rejection).")
@global_options
def cicd_reject(summary, opts, lake):
    """Reject the promotion waiting for --env (or the only one waiting); the execution stops there."""
    from sdlf_cli.workflows.cicd import decide

    return decide(lake, opts.env, False, summary or "")


@cicd.command("report")
@click.option("--action", "action", required=True, help="The pipeline action this build runs.")
@click.option("--result", "results", multiple=True, type=click.Path(path_type=Path),
              help="JSON a command of the build wrote (`--output json`), in the order they ran.")
@click.option("--otherwise", default=None, help="What failed when no result names a problem.")
@click.option("--succeeded/--failed", default=None, help="Default: CODEBUILD_BUILD_SUCCEEDING.")
@click.option("--build-succeeding", envvar="CODEBUILD_BUILD_SUCCEEDING", default="1", hidden=True)
@click.option("--topic-arn", envvar="SDLF_TOPIC_ARN", default=None, help="Where a failure is published.")
@global_options
def cicd_report(action, results, otherwise, succeeded, build_succeeding, topic_arn, opts):
    """In a build's `finally`: print what the build did and, when it failed, its root cause (published)."""
    from sdlf_cli.aws.pipelines import Topic
    from sdlf_cli.workflows.cicd import report

    if succeeded is None:
        succeeded = build_succeeding != "0"
    topic = Topic.at(topic_arn, opts.profile, opts.endpoint_url) if topic_arn else None
    return report(action, list(results), succeeded=succeeded, otherwise=otherwise, topic_arn=topic_arn, topic=topic)


@cicd.command("summarize")
@click.argument("plan_file", type=click.Path(path_type=Path))
@click.option("--text", "text_path", type=click.Path(path_type=Path), default=None,
              help="Write the full text plan here (it also goes to stderr, i.e. the build log).")
@click.option("--status", "status_path", type=click.Path(path_type=Path), default=None,
              help="`sdlf status --output json` of the environment: its stacks no longer declared are to remove.")
@global_options
def cicd_summarize(plan_file, text_path, status_path, opts):
    """The approval message of `sdlf plan --output json` (stacks to add/change/remove, data at risk, IAM changes)."""
    from sdlf_cli.workflows.cicd import summarize

    digest, text = summarize(plan_file, opts.env, text_path, status_path)
    click.echo(text, err=True)
    return digest


# --- status and teardown ---------------------------------------------------------------------------
@cli.command()
@global_options
def status(opts, lake):
    """Every stack of the lake: its status, whether it matches the configuration, and what to run next."""
    from sdlf_cli.workflows.status import lake_status

    return lake_status(lake)


@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--include-data", is_flag=True, help="Also empty and delete retained buckets, tables, keys (7 days).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted and retained; delete nothing.")
@global_options
def destroy(layers, include_data, dry_run, opts, lake):
    """Delete the lake's stacks (or LAYER... and their children; or named stacks), children first."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.ui.text import destroy_plan
    from sdlf_cli.workflows.destroy import destroy as run

    def confirm(plan) -> bool:
        destroy_plan(plan)
        return click.confirm(f"{plan.summary()}?", default=False, err=True)

    asker = (lambda plan: True) if opts.yes else (confirm if sys.stdin.isatty() else None)
    with make_reporter(opts.output) as reporter:
        return run(lake, layers=list(layers) or None, include_data=include_data, dry_run=dry_run, confirm=asker,
                   reporter=reporter)


def main() -> None:
    from sdlf_cli.ui.output import error

    # The interpreter's last garbage collection walks every object still alive: after a lint (cfn-lint's schemas
    # and rules) it took ~0.6 s of CPU, more than most commands' own work. Registered first, the freeze runs after
    # every other exit handler, and the collection skips what is frozen.
    atexit.register(gc.freeze)

    try:
        # Not standalone, click answers the code a command exits with (`ctx.exit`) instead of raising it.
        code = cli.main(standalone_mode=False, obj=Invocation(defaults()))
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SdlfError as e:
        log.debug("traceback", exc_info=True)  # shown at -vv
        error(str(e))
        sys.exit(e.exit_code)
    except (BotoCoreError, ClientError) as e:
        # A call outside the gateways (none should be): still one clear line, not a traceback.
        log.debug("traceback", exc_info=True)
        error(f"AWS call failed: {e}")
        sys.exit(1)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
