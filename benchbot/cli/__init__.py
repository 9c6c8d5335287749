"""`benchbot` command line: a thin Typer skin over the library. Errors the user can fix print one
line and exit 2. One module per verb group, each adding its commands with `register(app, bench_app)`;
the order of the calls below is the order of `benchbot --help`."""
from __future__ import annotations

import logging
import sys

import typer

from benchbot.cli import bench, console, detect, hardware, models, results, run
from benchbot.cli.common import err
from benchbot.core.errors import BenchbotError
from benchbot.core.logs import ROOT, ConsoleHandler, console_level

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="benchbot — benchmark grasp detectors on a real or simulated robot (GQ-STN paper protocol).")
bench_app = typer.Typer(help="Speed benchmarks: print figures for this machine.", no_args_is_help=True)


@app.callback()
def _options(ctx: typer.Context,
             verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                         help="Log more on stderr: -v info, -vv debug (device commands)."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="Log only errors on stderr."),
             ) -> None:
    """Log lines go to stderr through the rich console (warnings by default), above any progress bar;
    a run's log file (results/<run>/run.log) gets everything whatever the level."""
    logger = logging.getLogger(ROOT)
    handler = ConsoleHandler(lambda line: err.print(line, markup=False, highlight=False), console_level(verbose, quiet))
    saved_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(handler.level)

    def detach() -> None:  # in-process callers (tests) run many commands
        logger.removeHandler(handler)
        logger.setLevel(saved_level)

    ctx.call_on_close(detach)


for _module in (run, detect, hardware, models):
    _module.register(app, bench_app)
app.add_typer(bench_app, name="bench")
for _module in (bench, console, results):
    _module.register(app, bench_app)


def main() -> None:
    try:
        rv = app(standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except BenchbotError as e:
        err.print(f"error: {e.one_line()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as e:  # usage errors from Typer's (vendored) click: they know how to show themselves
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(2)
        raise
