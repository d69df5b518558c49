"""The emulator's CloudFormation: fixes to moto 5.2.5 and providers for the types it skips.

`install(ctx)` is idempotent and returns a function that takes everything out again. Each fix is a named
patch (see `installed_fixes()`); each provider is a moto `CloudFormationModel` subclass kept alive by the
`PROVIDERS` lists of its module (moto finds types through `__subclasses__()`, which holds weak references).
"""
from __future__ import annotations

from typing import Callable

from sdlf_cli.local.context import EmulatorContext


def providers() -> list[type]:
    from sdlf_cli.local.cfn import alarms, athena, buckets, cicd, glue, lakeformation, messaging

    return [*glue.PROVIDERS, *lakeformation.PROVIDERS, *athena.PROVIDERS, *messaging.PROVIDERS, *buckets.PROVIDERS,
            *alarms.PROVIDERS, *cicd.PROVIDERS]


def _clear_model_caches() -> None:
    # moto caches the type -> class map (and name properties) on first use; new classes and patched
    # name properties only show after clearing.
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def install(ctx: EmulatorContext | None = None) -> Callable[[], None]:
    """Installs every fix and provider (ctx is accepted for symmetry with the runtime; nothing here
    needs the endpoint: providers write straight to moto's backends)."""
    from sdlf_cli.local.cfn import _patching
    from sdlf_cli.local.cfn.buckets import install_bucket_fixes
    from sdlf_cli.local.cfn.changesets import install_change_set_fixes
    from sdlf_cli.local.cfn.functions import install_function_fixes
    from sdlf_cli.local.cfn.keys import install_key_fixes
    from sdlf_cli.local.cfn.loggroups import install_log_group_fixes
    from sdlf_cli.local.cfn.roles import install_role_fixes
    from sdlf_cli.local.cfn.ssm_parameters import install_ssm_parameter_fixes
    from sdlf_cli.local.cfn.stacks import install_stack_fixes
    from sdlf_cli.local.cfn.statemachines import install_state_machine_fixes
    from sdlf_cli.local.cfn.template_parsing import install_template_parsing_fixes
    from sdlf_cli.local.cfn.tables import install_table_fixes
    from sdlf_cli.local.cfn.termination_protection import install_termination_protection_fixes
    from sdlf_cli.local.cfn.updates import install_update_fixes

    install_template_parsing_fixes()
    install_stack_fixes()
    install_change_set_fixes()
    install_update_fixes()
    install_bucket_fixes()
    install_function_fixes()
    install_state_machine_fixes()
    install_table_fixes()
    install_log_group_fixes()
    install_role_fixes()
    install_key_fixes()
    install_ssm_parameter_fixes()
    install_termination_protection_fixes()
    registered = providers()
    _clear_model_caches()
    known = _model_types()
    missing = [p.cloudformation_type() for p in registered if p.cloudformation_type() not in known]
    if missing:
        raise RuntimeError(f"CloudFormation providers not visible to moto: {missing}")

    def uninstall() -> None:
        _patching.uninstall_all()
        _clear_model_caches()

    return uninstall


def _model_types() -> set[str]:
    from moto.cloudformation import parsing

    return set(parsing.get_model_map())


def installed_fixes() -> list[str]:
    from sdlf_cli.local.cfn import _patching

    return _patching.installed_names()
