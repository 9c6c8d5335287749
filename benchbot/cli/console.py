"""Command line of the operator console: `run --console` (wired in cli.run), `benchbot console`
(find the page of a running run) and `benchbot bench console` (detection → page latency)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from benchbot.core.errors import BenchbotError

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def run_with_console(cfg: Any, operator: Any, console: Console, host: str, port: int) -> Any:
    """Runner(cfg).run() with the console page served beside the terminal."""
    from benchbot.console.server import is_loopback
    from benchbot.console.session import console_session
    from benchbot.harness.operator import ConsoleOperator
    from benchbot.harness.runner import Runner

    terminal = operator if isinstance(operator, ConsoleOperator) else None
    with console_session(cfg.db_path, terminal, host, port) as session:
        console.print(f"[bold]console:[/] {session.url}", highlight=False)
        if not is_loopback(host):
            console.print(f"[yellow]the console is reachable from the network on {host}: whoever has this address "
                          "(its token) can answer for the operator[/]", highlight=False)
        return Runner(cfg, operator=session.operator, console=console, observers=session.observers).run()


def console_cmd(db: Path = typer.Option(Path("results/benchbot.db"), "--db", help="Results database of the run."),
                open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
                ) -> None:
    """Print the address of the console page of the run writing to `--db` (started with `run --console`).

    Example: `benchbot console --db results/benchbot.db --open`
    """
    from benchbot.console.session import find_console

    info = find_console(db)
    url = info["url"]
    probe = url.replace("/?token=", "/api/state?token=", 1)
    if info.get("host") in ("0.0.0.0", "::"):
        probe = f"http://127.0.0.1:{info['port']}/api/state?token=" + url.split("token=", 1)[1]
    try:
        with urllib.request.urlopen(probe, timeout=3) as r:
            state = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BenchbotError(f"the console of pid {info['pid']} does not answer ({e})",
                            "check that the run is still going, or restart it with --console") from None
    run = state.get("run") or {}
    out.print(url, markup=False, highlight=False)
    err.print(f"run {run.get('run_id', '?')} ({run.get('backend', '?')}), {state.get('phase')}; "
              f"{(state.get('table') or {}).get('done', 0)} of {run.get('n_trials', '?')} trials done",
              markup=False, highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(url)


def bench_console(trials: int = typer.Option(10, "--trials", help="Trials of the rehearsal."),
                  method: str = typer.Option("centroid", "--method", help="Detector of the rehearsal."),
                  robustness: bool = typer.Option(True, "--robustness/--no-robustness",
                                                  help="Compute q (GQ-CNN) between detection and display."),
                  ) -> None:
    """Detection → grasp shown on the console page, in a headless Chromium, over a rehearsal run
    (dry-run arm, replay camera) answered through the page."""
    from benchbot.bench.console import run_benchmark

    run_benchmark(trials=trials, method=method, robustness=robustness, echo=lambda m: out.print(m, markup=False))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("console")(console_cmd)
    bench_app.command("console")(bench_console)
