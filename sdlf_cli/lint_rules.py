"""Imported by the lint workers' fork server: loads cfn-lint's rules once, before the workers fork from it."""
from sdlf_cli.lint import cfn_lint_rules

cfn_lint_rules()
