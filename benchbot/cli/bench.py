"""`benchbot bench …`: speed benchmarks of perception, GQ-CNN, the models and the simulator (the
console and report benchmarks are registered by cli.console and cli.results)."""
from __future__ import annotations

import typer

from benchbot.cli.common import check_counts, out
from benchbot.core.errors import BenchbotError


def bench_perception(candidates: int = typer.Option(1000, "--candidates"),
                     repeats: int = typer.Option(3, "--repeats"),
                     recordings_only: bool = typer.Option(False, "--recordings-only",
                                                          help="Only prop-gqcnn on the shipped recordings.")) -> None:
    """Inpainting, table plane and workspace, table removal, sampler, whole prop-gqcnn detect, and
    prop-gqcnn on the shipped recordings (the 1 s target)."""
    from benchbot.bench.perception import run_benchmark, shipped_line, shipped_recordings

    check_counts(candidates=(candidates, 1, 100_000), repeats=(repeats, 1, 1000))
    if recordings_only:
        out.print(shipped_line(shipped_recordings(repeats)), markup=False)
    else:
        run_benchmark(repeats=repeats, candidates=candidates)


def bench_tilt(scenes: int = typer.Option(30, "--scenes", help="Synthetic scenes (held-out objects)."),
               tilts: str = typer.Option("0,5,10,15,20", "--tilts", help="Camera tilts in degrees."),
               methods: str = typer.Option("gqstn,gqstn-refine,centroid", "--methods")) -> None:
    """Robust % of detectors on MuJoCo scenes seen from cameras tilted 0–20° (each grasp judged by
    the GQ-CNN on the same scene seen straight from above)."""
    from benchbot.bench.tilt import run_sweep

    try:
        angles = [float(t) for t in tilts.split(",")]
    except ValueError:
        raise BenchbotError(f"--tilts {tilts!r} is not a list of numbers", "e.g. --tilts 0,5,10,15,20") from None
    run_sweep(methods.split(","), angles, scenes, echo=lambda m: out.print(m, markup=False, highlight=False))


def bench_gqcnn(n: int = typer.Option(1000, "--n"), repeats: int = typer.Option(3, "--repeats")) -> None:
    """Crop extraction and GQ-CNN 2.0 / 4.0-PJ forward at batch 1 and n."""
    from benchbot.bench.gqcnn import run_benchmark

    check_counts(n=(n, 1, 100_000), repeats=(repeats, 1, 1000))
    run_benchmark(n=n, repeats=repeats)  # prints its own table


def bench_models(repeats: int = typer.Option(10, "--repeats"), threads: int = typer.Option(2, "--threads")) -> None:
    """GQ-STN and MultiGrasp detect latency per stage (paper, small and shipped architectures)."""
    from benchbot.bench.models import run_benchmark

    check_counts(repeats=(repeats, 1, 1000), threads=(threads, 1, 256))
    run_benchmark(("paper", "small", "shipped"), repeats=repeats, threads=threads)


def bench_sim(trials: int = typer.Option(12, "--trials"), images: int = typer.Option(4, "--images"),
              workers: int = typer.Option(1, "--workers")) -> None:
    """Depth render, one grasp trial, the 180-trial physics run and datagen throughput."""
    from benchbot.bench.sim import run_benchmark

    check_counts(trials=(trials, 1, 10_000), images=(images, 1, 10_000), workers=(workers, 1, 256))
    run_benchmark(n_trials=trials, datagen_images=images, workers=workers, echo=lambda m: out.print(m, markup=False))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add bench perception, gqcnn, models and sim."""
    bench_app.command("perception")(bench_perception)
    bench_app.command("tilt")(bench_tilt)
    bench_app.command("gqcnn")(bench_gqcnn)
    bench_app.command("models")(bench_models)
    bench_app.command("sim")(bench_sim)
