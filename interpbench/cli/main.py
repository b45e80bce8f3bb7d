"""The interpbench command line: a thin layer that parses options and calls the package.

One module per command; heavy imports (torch, open_clip) happen inside the commands so
`interpbench --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from interpbench.cli.common import state

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
    except Exception as exc:  # click usage errors are handled by click itself
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
