"""MkDocs hook: render the `benchbot` command reference from the Typer app at build time.

A page that holds the line `<!-- benchbot-cli-reference -->` gets, in its place, one section per
command (its help text, usage line and a table of its arguments and options), read from the same
Typer app that `benchbot` runs, so the reference cannot drift from the code.
"""
from __future__ import annotations

import sys
from pathlib import Path

MARKER = "<!-- benchbot-cli-reference -->"


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _params_table(cmd, ctx) -> list[str]:
    rows = []
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        kind = "argument" if param.param_type_name == "argument" else "option"
        rows.append(f"| `{_cell(names)}` | {kind} | {_cell(help_text) or '–'} |")
    if not rows:
        return []
    return ["| name | kind | description |", "|---|---|---|", *rows, ""]


def _render(cmd, ctx, depth: int) -> list[str]:
    from typer._click.core import Context

    lines = [f"{'#' * depth} `{ctx.command_path}`", ""]
    if cmd.help:
        lines += [cmd.help.strip(), ""]
    lines += ["```text", cmd.get_usage(ctx).strip(), "```", ""]
    lines += _params_table(cmd, ctx)
    subcommands = getattr(cmd, "list_commands", None)
    if subcommands is not None:
        for name in subcommands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            lines += _render(sub, Context(sub, info_name=name, parent=ctx), depth + 1)
    return lines


def render_cli_reference() -> str:
    """Markdown for every `benchbot` command, in the order `benchbot --help` lists them."""
    import typer.main
    from typer._click.core import Context

    from benchbot.cli import app

    root = typer.main.get_command(app)
    ctx = Context(root, info_name="benchbot")
    lines = [root.help.strip(), "", "```text", root.get_usage(ctx).strip(), "```", ""]
    lines += _params_table(root, ctx)
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        if cmd is not None and not getattr(cmd, "hidden", False):
            lines += _render(cmd, Context(cmd, info_name=name, parent=ctx), 2)
    return "\n".join(lines)


def on_config(config, **kwargs):
    # Import this checkout's benchbot (the one the docs describe), not another installed copy.
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render_cli_reference())
