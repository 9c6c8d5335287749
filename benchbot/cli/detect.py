"""`benchbot detect`: one grasp on one frame."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from benchbot.cli.common import out


def detect(frame: Path = typer.Argument(..., help="Depth frame (.npy metres / .png mm) or a recording folder."),
           method: str = typer.Option("prop-gqcnn", "--method", "-m", help="Detector name."),
           index: int = typer.Option(0, "--index", help="Frame index when FRAME is a recording folder."),
           intrinsics: Path | None = typer.Option(None, "--intrinsics", help="intrinsics.yaml for a bare frame."),
           overlay: Path = typer.Option(Path("overlay.png"), "--out", "-o", help="Overlay PNG to write."),
           no_robustness: bool = typer.Option(False, "--no-robustness", help="Skip the GQ-CNN evaluator."),
           option: list[str] = typer.Option([], "--option", help="Detector option key=value (repeatable)."),
           ) -> None:
    """Detect one grasp on one frame, print it as JSON and write an overlay PNG.

    Examples: `benchbot detect benchbot/data/recordings/default --index 12 -o grasp.png`,
    `benchbot detect --method prop-gqcnn --option policy=cem frame.npy --intrinsics intrinsics.yaml`
    """
    from benchbot.harness.detect import detect_one, parse_options

    result = detect_one(frame, method, index=index, intrinsics=intrinsics, overlay=overlay,
                        robustness=not no_robustness, options=parse_options(option))
    out.print_json(json.dumps(result))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add detect to the benchbot command line."""
    app.command()(detect)
