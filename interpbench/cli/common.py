"""Shared CLI helpers: global state and rich progress bars."""

from __future__ import annotations

import contextlib

state: dict = {"debug": False}


@contextlib.contextmanager
def progress_tasks(enabled: bool = True):
    """Yield task(description, total) -> advance(n); a rich progress bar per long step."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as progress:
        def task(description: str, total: int):
            tid = progress.add_task(description, total=total)
            return lambda n: progress.advance(tid, n)

        yield task
