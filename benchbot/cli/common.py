"""What the command modules share: the two consoles, default paths, common options, output helpers."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from benchbot.core.errors import check_number

out = Console(soft_wrap=True, emoji=False)  # no :emoji: codes in paths and names a user typed
err = Console(stderr=True, soft_wrap=True, emoji=False)

DEFAULT_DB = Path("results/benchbot.db")
DEFAULT_RESULTS = Path("results")
ProtocolOpt = typer.Option(None, "--protocol", "-p", help="Protocol YAML (default: protocols/paper.yaml).")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="SQLite results database.")
HardwareOpt = typer.Option(..., "--hardware",
                           help="Hardware YAML (see benchbot/config/defaults/hardware.example.yaml).")


def protocol_or_default(path: Path | None) -> Path:
    from benchbot.config.protocol import default_protocol_path  # pydantic and yaml: not for every command

    return path or default_protocol_path()


def say(text: str) -> None:
    """Print a line that holds user text (paths, names, ids) as it is: no markup, no highlighting."""
    out.print(text, markup=False, highlight=False)


def check_counts(**limits: tuple[int, int, int]) -> None:
    """Refuse a count option outside its range: name=(value, lowest, highest); `--` form in the message."""
    for name, (value, lo, hi) in limits.items():
        check_number(f"--{name.replace('_', '-')}", value, lo, hi, integer=True)
