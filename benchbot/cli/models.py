"""Model commands: datagen, datagen-merge, train, eval, gqcnn-convert and calibrate-threshold."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from benchbot.cli.common import DbOpt, check_counts, out, say
from benchbot.core.errors import BenchbotError, shown


def datagen(out_dir: Path = typer.Argument(..., help="Dataset folder (Dex-Net 2.0 tensor layout + images/)."),
            images: int = typer.Option(100, "--images", help="Number of rendered scenes."),
            seed_start: int = typer.Option(0, "--seed-start", help="First scene seed (shard by seed range)."),
            workers: int = typer.Option(1, "--workers", help="Processes."),
            grasps_per_image: int = typer.Option(50, "--grasps-per-image"),
            perturbations: int = typer.Option(4, "--perturbations", help="Extra perturbed trials per grasp."),
            objects: Path | None = typer.Option(None, "--objects", help="Objects YAML (default: training objects)."),
            exclude_objects: Path | None = typer.Option(None, "--exclude-objects", help="Objects YAML whose ids are "
                                                         "never drawn (e.g. benchbot/data/heldout_objects.yaml)."),
            progress: bool = typer.Option(True, "--progress/--no-progress"),
            randomize: bool = typer.Option(False, "--randomize", help="Domain randomisation: sensor, camera tilt "
                                           "and height, 1–5 objects, distractors, fingers in view "
                                           "(docs/simulation/datagen.md)."),
            sensors: str | None = typer.Option(None, "--sensors", help="With --randomize: comma-separated "
                                                  "sensors (default: kinect2,primesense,d415,d435,azure-nfov)."),
            ) -> None:
    """Generate a physics-labelled synthetic dataset in Dex-Net 2.0's format (resumable, sharded by seed).

    Example: `benchbot datagen datasets/train --images 1000 --workers 2 --perturbations 1`
    """
    from benchbot.sim.datagen import generate
    from benchbot.sim.randomize import Randomization
    from benchbot.train.objects import training_objects

    if sensors and not randomize:
        raise BenchbotError("--sensors needs --randomize", "add --randomize or drop --sensors")
    rnd = None
    if randomize:
        rnd = Randomization(sensors=tuple(s.strip() for s in sensors.split(","))) if sensors else Randomization()
    objects_file, ids = training_objects(objects, exclude_objects)
    meta = generate(out_dir, n_images=images, seed_start=seed_start, workers=workers,
                    grasps_per_image=grasps_per_image, perturbations=perturbations, progress=progress,
                    objects_file=objects_file, object_ids=ids, randomize=rnd)
    _print_counts(out_dir, meta)


def _print_counts(out_dir: Path, meta: dict) -> None:
    counts = meta.get("counts") or {}
    say(f"{out_dir}: {counts.get('images')} images, {counts.get('grasps')} labelled grasps")


def datagen_merge(shards: list[Path] = typer.Argument(..., help="Shard folders."),
                  out_dir: Path = typer.Option(..., "--out", help="Merged dataset folder.")) -> None:
    """Merge datasets generated with different seed ranges (e.g. one per Slurm array task)."""
    from benchbot.sim.datagen import merge_shards

    meta = merge_shards(shards, out_dir)
    _print_counts(out_dir, meta)


def datagen_view(sources: list[Path] = typer.Argument(..., help="`datagen --randomize` folders (finished or not)."),
                 out_dir: Path = typer.Option(..., "--out", help="New dataset folder of rectified views."),
                 kind: str = typer.Option("gqstn", "--kind", help="gqstn | multigrasp: whose training view."),
                 weights: Path | None = typer.Option(
                     None, "--weights", help="Checkpoint whose training view to use (default: shipped)."),
                 limit: int | None = typer.Option(None, "--limit", help="Use only the first N source images."),
                 ) -> None:
    """Training data in the rectified view the learned detectors see at inference (see
    benchbot/train/rectified.py); train on it with `--view-m` = view side / px_per_m.

    Example: `benchbot datagen-view datasets/dr-a datasets/dr-b --out datasets/dr-view`
    """
    from benchbot.models.checkpoint import load_file, resolve_weights
    from benchbot.train.rectified import make_view_dataset

    path = resolve_weights(kind, weights)
    view = (load_file(path).get("meta") or {}).get("view")
    if not view:
        raise BenchbotError(f"{shown(str(path), 200)} records no training view",
                            "pass --weights of a model trained with --view-m")
    meta = make_view_dataset(sources, out_dir, view)
    _print_counts(out_dir, meta)
    say(f"skipped source images: {meta['skipped']}; train with --view-m {view['side'] / view['px_per_m']:.4g}")


def train(kind: str = typer.Argument(..., help="gqstn | multigrasp"),
          data: Path = typer.Option(..., "--data", help="Dataset folder (benchbot datagen output)."),
          out_dir: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt, log.csv, <kind>.pt."),
          preset: str = typer.Option("small", "--preset", help="small (CPU) | paper (ResNet-34, 224)."),
          batch_size: int = typer.Option(32, "--batch-size"),
          epochs: int | None = typer.Option(None, "--epochs", help="Stop after this epoch (resumable)."),
          compress: float = typer.Option(1.0, "--compress", help="Shorten every schedule phase by this factor."),
          source_size: int | None = typer.Option(None, "--source-size", help="Resize images to this side."),
          seed: int = typer.Option(0, "--seed"),
          device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
          limit_train: int | None = typer.Option(None, "--limit-train"),
          limit_val: int | None = typer.Option(None, "--limit-val"),
          input_size: int | None = typer.Option(None, "--input-size", help="Network input side (preset's default)."),
          width: int | None = typer.Option(None, "--width", help="ResNet width (preset's default)."),
          augment: bool = typer.Option(True, "--augment/--no-augment",
                                       help="Random mirror/transpose of each training image per epoch."),
          target: str = typer.Option("classifier", "--target",
                                     help="GQ-STN target grasp: classifier (robust one the GQ-CNN rates best) | search "
                                          "(best-rated grasp near those) | metric."),
          coords: bool = typer.Option(False, "--coords", help="GQ-STN: x/y coordinate channels into the "
                                                             "localization nets (CoordConv)."),
          position_sigma: float | None = typer.Option(None, "--position-sigma", help="GQ-STN: measure the centre "
                                                         "error of L_loc in this fraction of the image side."),
          refine: int | None = typer.Option(None, "--refine", help="GQ-STN: extra translation passes on the "
                                               "image re-centred at the last estimate."),
          view_m: float | None = typer.Option(None, "--view-m", help="Models see only the central square of this "
                                                 "many metres of the table (default: the whole frame)."),
          init: Path | None = typer.Option(None, "--init", help="Fine-tune: start from this trained checkpoint "
                                              "(its architecture; --width/--coords/... are ignored)."),
          schedule: str | None = typer.Option(None, "--schedule", help="GQ-STN: paper (default) | finetune (the "
                                                 "paper's last phases, for --init) | finetune-loc (ξ = 0.2: "
                                                 "L_rob plus 0.2·L_loc toward --target, for --init)."),
          ) -> None:
    """Train GQ-STN or MultiGrasp with the paper's ξ/lr schedule; rerun the same command to resume.

    Examples: `benchbot train gqstn --data datasets/train --out runs/gqstn` (CPU preset);
    `torchrun --nproc_per_node 4 -m benchbot.train.ddp gqstn --data D --out R --preset paper` (GPUs)
    """
    from benchbot.train.loop import TrainConfig, model_overrides
    from benchbot.train.loop import train as train_model

    if kind not in ("gqstn", "multigrasp"):
        raise BenchbotError(f"unknown model kind '{kind}'", "use gqstn or multigrasp")
    from benchbot.train.schedule import SCHEDULES

    if schedule is not None and (kind != "gqstn" or schedule not in SCHEDULES):
        raise BenchbotError(f"--schedule {shown(schedule)} for {kind}", f"use one of {', '.join(SCHEDULES)} with gqstn")
    if init is not None:
        from benchbot.models.checkpoint import resolve_weights

        init = resolve_weights(kind, init)
    cfg = TrainConfig(preset=preset, batch_size=batch_size, max_epochs=epochs, compress=compress,
                      source_size=source_size, seed=seed, device=device, limit_train=limit_train,
                      limit_val=limit_val, augment=augment, target=target, view_m=view_m,
                      init=str(init) if init else None, schedule=SCHEDULES[schedule]() if schedule else None,
                      model_overrides=model_overrides(kind, input_size, width, coords, position_sigma, refine))
    result = train_model(kind, data, out_dir, cfg)
    say(f"{kind}: epoch {result.last_epoch}, best weights {result.model_path}")


def eval_cmd(models: list[str] = typer.Argument(..., help="Detectors to evaluate, e.g. gqstn multigrasp."),
             data: Path | None = typer.Option(None, "--data", help="Dataset folder (Table I)."),
             frames: list[Path] = typer.Option([], "--frames", help="Recording folder with object masks (real "
                                               "frames; repeatable) instead of --data."),
             weights: list[str] = typer.Option([], "--weights", help="name=PATH (repeatable)."),
             split: str = typer.Option("val", "--split",
                                       help="val (held-out 20 %) | train | all (a test set of other objects)."),
             limit: int | None = typer.Option(None, "--limit", help="At most N images."),
             fmt: str = typer.Option("md", "--format", "-f", help="md | csv | json."),
             baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                            help="Add the centroid baseline (--frames: and prop-gqcnn)."),
             ) -> None:
    """Table I on a held-out split: robust precision and rectangle precision (+ §V-B cross-tabs); with
    --frames, real recorded frames: grasps on the object / on the robot, mean q, robust %.

    Examples: `benchbot eval gqstn multigrasp --data datasets/train`,
    `benchbot eval gqstn gqstn-refine multigrasp --frames benchbot/data/recordings/default`
    """
    from benchbot.harness.detect import detector_options, parse_options
    from benchbot.train.evaluate import evaluate

    if fmt not in ("md", "csv", "json"):
        raise BenchbotError(f"unknown format '{fmt}'", "use md, csv or json")
    if limit is not None:
        check_counts(limit=(limit, 1, 10**9))
    if bool(frames) == (data is not None):
        raise BenchbotError("give either --data (a dataset) or --frames (recordings)", "e.g. --frames "
                            "benchbot/data/recordings/default")
    extra = [b for b in ((("prop-gqcnn", "centroid") if frames else ("centroid",)) if baselines else ())
             if b not in models]
    paths = parse_options(weights, "--weights")
    for name, path in paths.items():
        if name not in [*models, *extra]:
            raise BenchbotError(f"--weights {name}=…: {name} is not evaluated",
                                "evaluate it too, or drop that --weights")
        detector_options(name, {"weights": path})  # refuses detectors that take no weights
    if frames:
        from benchbot.train.eval_frames import evaluate_frames, frames_acceptance

        result = evaluate_frames(frames, [*models, *extra], limit=limit,
                                 options={k: {"weights": v} for k, v in paths.items()})
        out.print(result.render(fmt), markup=False, highlight=False)
        if fmt == "md":
            for check, ok in frames_acceptance(result).items():
                out.print(f"{'met' if ok else 'NOT met'}: {check}", markup=False, highlight=False)
        return
    assert data is not None  # checked above: --data or --frames
    table = evaluate(models, data, weights=paths, baselines=extra, split=split, limit=limit)
    out.print(table.render(fmt), markup=False, highlight=False)


def gqcnn_convert(src: Path = typer.Argument(..., help="Berkeley GQ-CNN release folder (model.ckpt + json + npy)."),
                  dst: Path = typer.Argument(..., help="Our .pt file to write."),
                  name: str | None = typer.Option(None, "--name", help="Model name stored in the file.")) -> None:
    """Convert a Berkeley GQ-CNN release (e.g. GQCNN-2.0) into benchbot's weights_only .pt format."""
    from benchbot.harness.detect import check_output_file
    from benchbot.models.weights import convert_release

    check_output_file(dst, ".pt", "gqcnn-4.0-pj.pt")
    path = convert_release(src, dst, name)
    say(f"written {path}")


def calibrate_threshold_cmd(run_id: str | None = typer.Option(None, "--run", help="Run id (default: latest)."),
                            db: Path = DbOpt) -> None:
    """Pick the robustness threshold that best separates judged successes from failures in a run
    (real or physics outcomes); recorded in the run's events. Use it with `run --threshold`."""
    from benchbot.models.robustness import calibrate_threshold
    from benchbot.results.store import Store, check_run_id

    if run_id is not None:
        check_run_id(run_id)
    if not db.is_file():
        raise BenchbotError(f"{db}: no results database", "pass --db")
    with Store(db) as store:
        rid = run_id or store.latest_run_id()
        if rid is None:
            raise BenchbotError(f"{db} has no runs", "run a benchmark first")
        a = store.tables(rid)["attempts"]
        a = a[(a["status"] == "final") & a["success"].notna() & a["q_robust"].notna()]
        cal = calibrate_threshold(a["q_robust"].to_numpy(float), a["success"].to_numpy(bool))
        store.record_event(rid, "threshold_calibration", json.dumps(cal.to_dict()))
    out.print_json(json.dumps(cal.to_dict()))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add datagen, datagen-merge, datagen-view, train, eval, gqcnn-convert and calibrate-threshold."""
    app.command()(datagen)
    app.command("datagen-merge")(datagen_merge)
    app.command("datagen-view")(datagen_view)
    app.command()(train)
    app.command("eval")(eval_cmd)
    app.command("gqcnn-convert")(gqcnn_convert)
    app.command("calibrate-threshold")(calibrate_threshold_cmd)
