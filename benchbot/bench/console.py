"""`benchbot bench console`: how long after detection the planned grasp is on the console page,
measured over a real rehearsal run (dry-run arm, replay camera, Modbus gripper emulator) whose
questions a headless Chromium answers by tapping the page."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from benchbot.config.protocol import default_protocol_path

REHEARSAL_OBJECTS = ("soup-can", "banana", "sponge", "mug", "marker", "scissors", "foam-brick", "clamp",
                     "tennis-ball", "pudding-box", "screwdriver", "mustard-bottle")
BUDGET_MS = 200.0


def write_rehearsal(folder: Path, trials: int, method: str = "centroid",
                    evaluator: str | None = None) -> tuple[Path, Path]:
    """A protocol of `trials` trials of `method` (one per object, then again) and a hardware file
    of a desk rehearsal: dry-run arm, in-process gripper emulator, the shipped replay recording."""
    folder.mkdir(parents=True, exist_ok=True)
    base = default_protocol_path().with_name("baselines.yaml")
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    n_objects = min(trials, len(REHEARSAL_OBJECTS))
    per_object = -(-trials // n_objects)
    data.update(objects=list(REHEARSAL_OBJECTS[:n_objects]), methods=[method], trials_per_object=per_object,
                objects_file=str((base.parent / data["objects_file"]).resolve()))
    data["motion"]["hold_s"] = 0.0
    if evaluator:
        data["robustness"]["evaluator"] = evaluator
    protocol = folder / "rehearsal.yaml"
    protocol.write_text(yaml.safe_dump(data), encoding="utf-8")
    hardware = folder / "hw.yaml"
    hardware.write_text(yaml.safe_dump({"name": "desk-rehearsal", "robot": {"kind": "dryrun"},
                                        "gripper": {"kind": "dryrun"}, "camera": {"kind": "replay"}}),
                        encoding="utf-8")
    return protocol, hardware


def run_benchmark(trials: int = 10, method: str = "centroid", robustness: bool = True,
                  echo: Callable[[str], None] = print) -> dict[str, float]:
    from rich.console import Console

    from benchbot.console.browser import PageDriver, Tap
    from benchbot.console.session import console_session
    from benchbot.harness.runner import RunConfig, Runner

    with tempfile.TemporaryDirectory(prefix="benchbot-bench-console-") as tmp:
        folder = Path(tmp)
        protocol, hardware = write_rehearsal(folder, trials, method)
        cfg = RunConfig(protocol_path=protocol, db_path=folder / "r.db", results_dir=folder / "res",
                        backend="hardware", hardware=hardware, max_trials=trials,
                        evaluator=None if robustness else "none")
        quiet = Console(stderr=True, quiet=True)
        with console_session(cfg.db_path, None) as session:
            taps = [Tap(kind, value) for _ in range(trials)
                    for kind, value in (("confirm", "go"), ("review", "go"), ("judge", "success"))]
            driver = PageDriver(session.url, taps)
            driver.start()
            try:
                summary = Runner(cfg, operator=session.operator, console=quiet, observers=session.observers).run()
            finally:
                driver.run_active.clear()
                driver.release.set()
            driver.join(30)
            if driver.error is not None:
                raise driver.error
            seen = np.array(session.state.seen_ms)
    if not len(seen):
        raise RuntimeError("the page reported no plan shown")
    figures = {"n": float(len(seen)), "median_ms": float(np.median(seen)), "p95_ms": float(np.percentile(seen, 95)),
               "max_ms": float(seen.max())}
    echo(f"console latency over {len(seen)} plans ({summary.finals} trials of {method}, q "
         f"{'on' if robustness else 'off'}; dry-run arm, replay camera, headless Chromium):")
    echo(f"  detector's answer → grasp drawn on the page: median {figures['median_ms']:.0f} ms, "
         f"p95 {figures['p95_ms']:.0f} ms, max {figures['max_ms']:.0f} ms")
    echo(f"  within budget: {'yes' if figures['p95_ms'] <= BUDGET_MS else 'NO'} (p95 ≤ {BUDGET_MS:.0f} ms)")
    return figures
