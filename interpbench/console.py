"""One rich Console for every table the CLI prints.

On a terminal rich fits tables to the window. Anywhere else (a pipe, a log file, CI) rich
falls back to 80 columns and cuts every cell to "sha…", "0.2…"; there nobody reads the
width, so the console is made wide enough that each row prints whole.
"""

from __future__ import annotations

# Wider than any table interpbench prints; rich tables take only the width they need.
PIPE_WIDTH = 1000


def output_console(pipe_width: int = PIPE_WIDTH, **kwargs):
    """A rich Console on stdout: the terminal's width on a TTY, `pipe_width` columns otherwise
    (commands whose cells wrap well, such as `models`, ask for a readable width)."""
    from rich.console import Console

    console = Console(**kwargs)
    if console.is_terminal:
        return console
    return Console(width=pipe_width, **kwargs)
