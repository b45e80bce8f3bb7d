"""The accepted range of every numeric command-line option, in one place.

`apply_limits(app)` gives each option its range before typer builds the commands, so a
value outside it ends as a usage error naming the option and the range (exit code 2), not
as a traceback from deep inside a run (`--batch-size 0` used to end in `range() arg 3 must
not be zero`). Options are matched by parameter name; tests/test_cli_limits.py checks that
every numeric option of every command has a range, so a new option must be listed here.
"""

from __future__ import annotations

import inspect
import typing

SEED_MAX = 2**32 - 1  # numpy's seed range; torch accepts it too

# parameter name -> (min, max); None = unbounded on that side
LIMITS: dict[str, tuple[float | None, float | None]] = {
    "n_images": (1, None),
    "seed": (0, SEED_MAX),
    "batch_size": (1, None),
    "bootstrap": (0, None),  # 0: no intervals
    "cf_scenes": (0, None),  # 0 skips counterfactual selectivity
    "feature": (0, None),  # feature indices; the upper end is checked against the model's width
    "top": (0, None),
    "n_top_images": (1, None),
    "min_images": (1, None),
    "depth": (1, None),
    "steps": (1, None),
    "texts_per_head": (1, None),
    "last_layers": (1, None),
    "rank": (1, None),  # decompose's TextSpan rank (explore's --rank is a word and is skipped)
    "n_heads": (1, None),
    "n_random": (1, None),
    "k_ref": (1, None),
    "s_ref": (0.0, None),
    "jaccard": (0.0, 1.0),  # 0 itself is refused by AnalysisSettings
}


def _base_type(tp):
    """int/float behind Annotated[...], X | None and list[X]; None for anything else."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (list, typing.Union) or type(tp).__name__ == "UnionType":
        return _base_type(args[0]) if len(args) == 1 else None
    return tp if tp in (int, float) else None


def _option_info(hint, default):
    from typer.models import ParameterInfo

    if typing.get_origin(hint) is typing.Annotated:
        found = [m for m in typing.get_args(hint)[1:] if isinstance(m, ParameterInfo)]
        if found:
            return found[0]
    return default if isinstance(default, ParameterInfo) else None


def numeric_parameters(callback):
    """(name, ParameterInfo or None) for each int/float parameter of a command function.

    The command modules use `from __future__ import annotations`, so each Annotated[...] is a
    string that every evaluation turns into new option objects. The evaluated hint is stored
    back on the function, so that the object changed here is the one typer reads.
    """
    hints = typing.get_type_hints(callback, include_extras=True)
    for name, param in inspect.signature(callback).parameters.items():
        if _base_type(hints.get(name)) is not None:
            callback.__annotations__[name] = hints[name]
            yield name, _option_info(hints[name], param.default)


def _callbacks(app):
    for info in app.registered_commands:
        yield info.callback
    for group in app.registered_groups:
        yield from _callbacks(group.typer_instance)


def apply_limits(app) -> None:
    """Set min/max on every numeric option named in LIMITS (the option objects are shared
    between commands that use the same alias, which is fine: same name, same range)."""
    for callback in _callbacks(app):
        for name, info in numeric_parameters(callback):
            if info is not None and name in LIMITS:
                info.min, info.max = LIMITS[name]
