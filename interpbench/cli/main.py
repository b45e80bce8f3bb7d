"""The interpbench command line: a thin layer that parses options and calls the package.

One module per command; heavy imports (torch, open_clip) happen inside the commands so
`interpbench --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from interpbench.cli.common import state
from interpbench.cli.limits import apply_limits

app = typer.Typer(name="interpbench", no_args_is_help=True, add_completion=False,
                  help="Label and evaluate sparse representations of CLIP.")

# (module, attribute, name): single commands are functions, groups are Typer sub-apps.
_COMMANDS = [("interpbench.cli.evaluate", "evaluate", "evaluate"),
             ("interpbench.cli.models", "models", "models"),
             ("interpbench.cli.validity", "validate_metrics", "validate-metrics")]
_GROUPS = [("interpbench.cli.train", "app", "train", "Train reference models: CLIPs and TopK SAEs."),
           ("interpbench.cli.vocab", "app", "vocab", "Build and list vocabularies."),
           ("interpbench.cli.leaderboard", "app", None, None),
           ("interpbench.cli.explore", "app", None, None),
           ("interpbench.cli.decompose", "app", "decompose", "Decompose CLIP ViTs into heads (TextSpan)."),
           ("interpbench.cli.analyze", "app", "analyze", "Steering, ablation and latent-space analyses.")]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")):
    state["debug"] = debug


for module, attr, name in _COMMANDS:
    app.command(name=name)(getattr(importlib.import_module(module), attr))
for module, attr, name, help_text in _GROUPS:
    try:
        sub = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:  # optional command modules not present in this build
        if exc.name != module:
            raise
        continue
    if name is None:  # a module of top-level commands
        app.registered_commands.extend(sub.registered_commands)
    else:
        app.add_typer(sub, name=name, help=help_text)
apply_limits(app)  # every numeric option gets its documented range (interpbench/cli/limits.py)


def main() -> None:
    from interpbench.errors import InterpbenchError

    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:  # typer.Exit(code) comes back as a return value here
            sys.exit(rc)
    except InterpbenchError as err:
        if state.get("debug"):
            raise
        typer.secho(f"error ({err.kind}): {err}", fg=typer.colors.RED, err=True)
        sys.exit(err.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # usage errors: click's message, no traceback
        usage, exit_ = _click_exception_types()
        if isinstance(exc, usage):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, exit_):
            sys.exit(exc.exit_code)
        raise


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, exits) of click and of the copy of click that typer >= 0.26 ships:
    typer raises its own copy's classes, which are not click's."""
    import click

    usage, exit_ = [click.exceptions.ClickException], [click.exceptions.Exit, typer.Exit]
    usage += [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    return tuple(usage), tuple(exit_)


if __name__ == "__main__":
    main()
