"""The `prox` command line. Each command lives in its own module of this package."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="prox",
    help="Refine LLM pre-training corpora by programming every example (ProX).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each command module registers itself on `app` (or adds a sub-app) when imported, in this order
# (the order of `prox --help`).
from prox.cli import execute_cmd  # noqa: E402,F401,I001 - prox execute
from prox.cli import render_cmd  # noqa: E402,F401 - prox render
from prox.cli import refine_cmd  # noqa: E402,F401 - prox refine
from prox.cli import train_cmd  # noqa: E402,F401 - prox train (sub-app)
from prox.cli import train_builtin_cmd  # noqa: E402,F401 - prox train builtin
from prox.cli import train_encoder_cmd  # noqa: E402,F401 - prox train encoder
from prox.cli import train_lm_cmd  # noqa: E402,F401 - prox train lm
from prox.cli import eval_cmd  # noqa: E402,F401 - prox eval lines | docs | words
from prox.cli import annotate_cmd  # noqa: E402,F401 - prox annotate
from prox.cli import compare_cmd  # noqa: E402,F401 - prox compare
from prox.cli import report_cmd  # noqa: E402,F401 - prox report


def main() -> None:
    app()
