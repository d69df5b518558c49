"""The `sdlf` command line: thin commands that parse, call one workflow, and render its result."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError

from sdlf_cli import views
from sdlf_cli.errors import SdlfError
from sdlf_cli.options import GlobalOptions, defaults, global_options


def _lake(opts: GlobalOptions):
    from sdlf_cli.config.loader import load_config

    return load_config(opts.env, opts.parameters_dir)


def _clients(opts: GlobalOptions, cfg):
    from sdlf_cli.aws.session import Clients
    from sdlf_cli.workflows.target import resolve_target

    target = resolve_target(cfg, profile=opts.profile, region=opts.region, endpoint_url=opts.endpoint_url,
                            local=opts.local)
    return Clients(target)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(package_name="sdlf")
@click.pass_context
def cli(ctx, opts):
    """sdlf: a serverless data lake on AWS, as readable CloudFormation, with an embedded local AWS."""
    ctx.obj = opts


# --- the embedded emulator -------------------------------------------------------------------------
@cli.group()
def local():
    """The embedded local AWS (a background process on 127.0.0.1)."""


@local.command("up")
@click.option("--port", type=int, default=None, help="Port (default 4566, or a free one).")
@global_options
def local_up(port, opts):
    """Start the emulator (a no-op when it already runs)."""
    from sdlf_cli.local import process

    views.local_status(process.up(None, port=port), opts.output)


@local.command("down")
@global_options
def local_down(opts):
    """Stop the emulator (its state is in memory and goes with it)."""
    from sdlf_cli.local import process

    views.local_status(process.down(None), opts.output)


@local.command("status")
@global_options
def local_status(opts):
    """Show whether the emulator runs, where, and its log file."""
    from sdlf_cli.local import process

    views.local_status(process.status(None), opts.output)


# --- configuration, render, lint, package ---------------------------------------------------------
@cli.group()
def config():
    """The resolved configuration of one environment."""


@config.command("show")
@global_options
def config_show(opts):
    """Print every resolved value and the file:line it came from."""
    from sdlf_cli.config.show import show_rows

    views.config_rows(show_rows(_lake(opts)), opts.output)


@cli.command()
@click.argument("layer", required=False)
@click.option("--build-dir", type=click.Path(path_type=Path), default=None, help="Default .sdlf/build/<env>.")
@global_options
def render(layer, build_dir, opts):
    """Render templates (all layers, or LAYER) into the build folder."""
    from sdlf_cli.workflows.build import render_to

    cfg = _lake(opts)
    views.paths(render_to(cfg, layer, build_dir or Path(".sdlf/build") / cfg.env), opts.output)


@cli.command()
@click.argument("layer", required=False)
@global_options
def lint(layer, opts):
    """Run cfn-lint on every rendered template; exit 1 on any finding."""
    from sdlf_cli.workflows.build import lint_layers

    findings = lint_layers(_lake(opts), layer)
    views.findings(findings, opts.output)
    sys.exit(1 if findings else 0)


@cli.command()
@global_options
def package(opts):
    """Zip Lambda code deterministically; upload what the artifact bucket lacks."""
    from sdlf_cli.workflows.build import package_artifacts

    cfg = _lake(opts)
    views.package(package_artifacts(cfg, _clients(opts, cfg)), opts.output)


# --- deploy ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--all", "all_layers", is_flag=True, help="Every stack the parameters file declares.")
@click.option("--dry-run", is_flag=True, help="Plan change sets without executing anything.")
@global_options
def deploy(layers, all_layers, dry_run, opts):
    """Create or update stacks (parents first, independent stacks in parallel)."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import deploy_layers, layers_to_deploy

    cfg = _lake(opts)
    with make_reporter(opts.output) as reporter:
        outcome = deploy_layers(cfg, _clients(opts, cfg), reporter,
                                layers_to_deploy(cfg, list(layers), all_layers), dry_run=dry_run)
    views.deploy_outcome(outcome, opts.output)
    sys.exit(0 if outcome.ok else 1)


@cli.command()
@click.argument("layers", nargs=-1)
@global_options
def plan(layers, opts):
    """What `deploy` would change (change sets, created and deleted again)."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.deploy import deploy_layers, layers_to_deploy

    cfg = _lake(opts)
    with make_reporter(opts.output) as reporter:
        outcome = deploy_layers(cfg, _clients(opts, cfg), reporter,
                                layers_to_deploy(cfg, list(layers), not layers), dry_run=True)
    views.deploy_outcome(outcome, opts.output)
    sys.exit(0 if outcome.ok else 1)


# --- onboarding ----------------------------------------------------------------------------------
def _add(opts: GlobalOptions, addition) -> None:
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.onboard import add_and_deploy

    with make_reporter(opts.output) as reporter:
        outcome = add_and_deploy(opts.env, opts.parameters_dir, addition, lambda cfg: _clients(opts, cfg), reporter)
    views.deploy_outcome(outcome, opts.output)
    sys.exit(0 if outcome.ok else 1)


@cli.command("add-team")
@click.argument("team")
@click.option("--email", default=None, help="Notification email of the team.")
@global_options
def add_team(team, email, opts):
    """Add TEAM to parameters/<env>.yaml and deploy its stack."""
    from sdlf_cli.workflows.onboard import Addition

    _add(opts, Addition("team", team, team, email=email))


@cli.command("add-pipeline")
@click.argument("team")
@click.argument("pipeline")
@global_options
def add_pipeline(team, pipeline, opts):
    """Add PIPELINE to TEAM and deploy it (and the team's stack if missing)."""
    from sdlf_cli.workflows.onboard import Addition

    _add(opts, Addition("pipeline", team, pipeline))


@cli.command("add-dataset")
@click.argument("team")
@click.argument("dataset")
@click.option("--pipeline", required=True, help="The team's pipeline that processes it.")
@click.option("--transform", default=None, help="Stage-A light transform (default: default).")
@click.option("--engine", type=click.Choice(["python", "spark"]), default=None, help="Stage-B engine.")
@click.option("--schedule", default=None, help="Stage-B schedule, rate(...) or cron(...).")
@global_options
def add_dataset(team, dataset, pipeline, transform, engine, schedule, opts):
    """Add DATASET to TEAM and deploy it (and missing parent stacks)."""
    from sdlf_cli.workflows.onboard import Addition

    settings = {k: v for k, v in {"transform": transform, "engine": engine, "schedule": schedule}.items() if v}
    _add(opts, Addition("dataset", team, dataset, pipeline=pipeline, settings=settings))


# --- data ------------------------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--wait/--no-wait", default=True, help="Wait for the catalog rows.")
@global_options
def ingest(files, team, dataset, wait, opts):
    """Upload FILES to the raw bucket under <team>/<dataset>/."""
    from sdlf_cli.workflows.ingest import ingest_and_track

    cfg = _lake(opts)
    views.ingested(ingest_and_track(cfg, _clients(opts, cfg), list(files), team, dataset, wait=wait), opts.output)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--uri", default=None, help="One object, s3://bucket/key.")
@global_options
def catalog(team, dataset, uri, opts):
    """Rows of the object catalog, newest first."""
    from sdlf_cli.workflows.ingest import catalog_rows

    cfg = _lake(opts)
    views.catalog(catalog_rows(cfg, _clients(opts, cfg), team=team, dataset=dataset, uri=uri), opts.output)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--limit", default=20, show_default=True)
@global_options
def runs(team, dataset, limit, opts):
    """Recent pipeline executions: status, duration, object counts, error."""
    from sdlf_cli.workflows.observe import recent_runs

    cfg = _lake(opts)
    views.runs(recent_runs(cfg, _clients(opts, cfg), team=team, dataset=dataset, limit=limit), opts.output)


@cli.command()
@click.argument("uri")
@global_options
def trace(uri, opts):
    """One object's journey: catalog rows, sources, outputs, executions, error."""
    from sdlf_cli.workflows.observe import trace_object

    cfg = _lake(opts)
    views.journey(trace_object(cfg, _clients(opts, cfg), uri), opts.output)


@cli.command("run-stage-b")
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--wait/--no-wait", default=True, help="Wait for the batch's execution to finish.")
@global_options
def run_stage_b(team, dataset, wait, opts):
    """Start a stage-B batch of DATASET now (whatever its schedule and minimum batch size)."""
    from sdlf_cli.workflows.stage_b import run_stage_b as run

    cfg = _lake(opts)
    result = run(cfg, _clients(opts, cfg), team, dataset, wait=wait)
    views.stage_b_run(result, opts.output)
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.option("--team", required=True)
@click.option("--dataset", required=True)
@click.option("--runs", "count", default=1, show_default=True, help="How many recent runs to show.")
@global_options
def quality(team, dataset, count, opts):
    """Latest data-quality results of a dataset (per rule: status, observed value)."""
    from sdlf_cli.workflows.stage_b import latest_quality

    cfg = _lake(opts)
    views.quality(latest_quality(cfg, _clients(opts, cfg), team, dataset, runs=count), opts.output)


# --- dead letters ----------------------------------------------------------------------------------
@cli.command("dead-letters")
@click.option("--team", default=None)
@click.option("--pipeline", default=None)
@click.option("--dataset", default=None)
@click.option("--stage", type=click.Choice(["catalog", "a", "b"]), default=None)
@global_options
def dead_letters(team, pipeline, dataset, stage, opts):
    """The lake's dead-letter queues (catalog, stage A per pipeline, stage B per dataset) and their counts."""
    from sdlf_cli.workflows.redrive import list_dead_letters

    cfg = _lake(opts)
    views.dead_letters(list_dead_letters(cfg, _clients(opts, cfg), team=team, pipeline=pipeline, dataset=dataset,
                                         stage=stage), opts.output)


@cli.command()
@click.option("--team", default=None)
@click.option("--dataset", default=None)
@click.option("--stage", type=click.Choice(["catalog", "a", "b"]), default=None, help="Only this kind of DLQ.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Move at most N messages.")
@click.option("--dry-run", is_flag=True, help="List what would move; move nothing.")
@global_options
def redrive(team, dataset, stage, limit, dry_run, opts):
    """Move every message of the selected DLQs back to its stage (send first, then delete); exit 1 if any failed."""
    from sdlf_cli.workflows.redrive import redrive as run

    cfg = _lake(opts)
    result = run(cfg, _clients(opts, cfg), team=team, dataset=dataset, stage=stage, limit=limit, dry_run=dry_run)
    views.redrive(result, opts.output)
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.argument("sql")
@click.option("--team", default=None, help="Run in the team's Athena workgroup.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default=None,
              help="Result format (default: --output).")
@global_options
def query(sql, team, fmt, opts):
    """Run SQL on the lake: Athena on AWS, DuckDB over the analytics Parquet on the emulator."""
    from sdlf_cli.workflows.query import run_query

    cfg = _lake(opts)
    views.query_result(run_query(cfg, _clients(opts, cfg), sql, team=team), fmt or opts.output)


@cli.command()
@global_options
def demo(opts):
    """From nothing to a queried analytics table on the embedded emulator, in one command."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.demo import run_demo

    # The demo's own step lines are its progress view; stack events would drown them.
    with make_reporter("json") as reporter:
        result = run_demo(opts.env, opts.parameters_dir, reporter,
                          on_step=views.demo_step if opts.output != "json" else (lambda step: None))
    views.demo(result, opts.output)
    sys.exit(0 if result.ok else 1)


# --- status and teardown ---------------------------------------------------------------------------
@cli.command()
@global_options
def status(opts):
    """Every stack of the lake: its status, whether it matches the configuration, and what to run next."""
    from sdlf_cli.workflows.status import lake_status

    cfg = _lake(opts)
    views.lake_status(lake_status(cfg, _clients(opts, cfg)), opts.output)


@cli.command()
@click.argument("layers", nargs=-1)
@click.option("--include-data", is_flag=True, help="Also empty and delete retained buckets, tables, keys (7 days).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted and retained; delete nothing.")
@global_options
def destroy(layers, include_data, dry_run, opts):
    """Delete the lake's stacks (or LAYER... and their children; or named stacks), children first."""
    from sdlf_cli.ui import make_reporter
    from sdlf_cli.workflows.destroy import destroy as run

    def confirm(plan) -> bool:
        views.destroy_plan(plan, "text")
        return click.confirm(f"{plan.summary()}?", default=False, err=True)

    asker = (lambda plan: True) if opts.yes else (confirm if sys.stdin.isatty() else None)
    cfg = _lake(opts)
    with make_reporter(opts.output) as reporter:
        result = run(cfg, _clients(opts, cfg), layers=list(layers) or None, include_data=include_data,
                     dry_run=dry_run, confirm=asker, reporter=reporter)
    views.destroyed(result, opts.output)
    sys.exit(0 if result.ok else 1)


def main() -> None:
    try:
        cli.main(standalone_mode=False, obj=defaults())
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SdlfError as e:
        views.error(str(e))
        sys.exit(e.exit_code)
    except (BotoCoreError, ClientError) as e:
        # Errors the workflows did not translate: still one clear line, not a traceback.
        views.error(f"AWS call failed: {e}")
        sys.exit(1)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()
