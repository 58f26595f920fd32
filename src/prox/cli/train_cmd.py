"""`prox train builtin|lm`: the sub-app; the two trainers add their commands to it."""
import typer

from prox.cli import app

train_app = typer.Typer(help="Train a refiner: the builtin CPU model or a small LM (SFT).", no_args_is_help=True)
app.add_typer(train_app, name="train")
