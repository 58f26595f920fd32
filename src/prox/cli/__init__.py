"""The `prox` command line. Each command lives in its own module of this package."""
from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="prox",
    help="Refine LLM pre-training corpora by programming every example (ProX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules register themselves on `app` (or add sub-apps) when imported.
# A module that is not written yet is simply absent; a broken one must fail loudly.
_COMMAND_MODULES = [
    "execute_cmd",   # prox execute
    "render_cmd",    # prox render
    "refine_cmd",    # prox refine
    "train_cmd",     # prox train (sub-app)
    "train_builtin_cmd",  # prox train builtin
    "train_lm_cmd",  # prox train lm
    "eval_cmd",      # prox eval lines | docs | words
    "annotate_cmd",  # prox annotate
    "compare_cmd",   # prox compare
    "report_cmd",    # prox report
]

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"prox.cli.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"prox.cli.{_name}":
            raise


def main() -> None:
    app()
