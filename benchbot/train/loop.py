"""The training loop of the one-shot detectors: `train(kind, data_dir, out_dir, config)`.

* schedule: the paper's ξ / lr / teacher-forcing plan (schedule.py) by default; Adam, L2 1e-7.
* data: training images get a random square symmetry per epoch (augment); a GQ-STN's targets come
  from its frozen classifier where it can (targets.py: best-rated robust grasp, crop footprint scale).
* every epoch: validation on the held-out 20 % (split by object), a CSV row in `log.csv`, the
  training state in `checkpoint.pt` (atomic write) and, when validation improved, the model in
  `<kind>.pt` (what `--weights` takes).
* resume: rerunning with the same out_dir continues after the last finished epoch; the result is
  the same as an uninterrupted run (seeded init, per-epoch data order from (seed, epoch), optimizer
  and early-stopping state restored).
* distributed: under torchrun (see ddp.py) each rank trains on its stride of the data.
"""
from __future__ import annotations

import csv
import functools
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from benchbot.core.errors import BenchbotError, check_number, shown
from benchbot.models.checkpoint import build_model, load_file, load_model, load_state, model_record, save_atomic
from benchbot.models.device import pick_device
from benchbot.models.gqstn import GQSTN, GQSTNConfig, gqstn_loss
from benchbot.models.multigrasp import MultiGrasp, MultiGraspConfig, multigrasp_loss
from benchbot.train.data import ImageIndex, ImageStream
from benchbot.train.ddp import init_from_env, wrap
from benchbot.train.schedule import EarlyStopping, Schedule, compressed, gqstn_paper, multigrasp_default

STATE_FORMAT = "benchbot-train-state"
LOG_FIELDS = ["epoch", "phase", "xi", "lr", "teacher_forcing", "train_loss", "train_a", "train_b", "train_robust",
              "val_loss", "val_a", "val_b", "val_robust", "improved", "seconds"]
# train_a/b, val_a/b: GQ-STN → L_loc, L_rob; MultiGrasp → confidence, regression loss


@dataclass
class TrainConfig:
    preset: str = "small"  # small (CPU) | paper (ResNet-34, 224)
    batch_size: int = 32
    max_epochs: int | None = None  # stop after this epoch (None: the whole schedule); resume continues
    compress: float = 1.0  # shorten every schedule phase by this factor (quick runs)
    schedule: Schedule | None = None  # default: gqstn_paper() / multigrasp_default()
    source_size: int | None = None  # side the letterboxed images are resized to (None: native)
    seed: int = 0
    device: str = "auto"
    weight_decay: float = 1e-7
    limit_train: int | None = None  # use only the first N training / validation images
    limit_val: int | None = None
    progress: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"backbone_width": 8}
    robust_threshold: float = 0.5  # P(robust) from the frozen GQ-CNN counted as robust
    augment: bool = True  # a random square symmetry (mirror/transpose) per training image and epoch
    target: str = "classifier"  # GQ-STN target: "classifier" (best-rated robust grasp) | "search" | "metric"
    view_m: float | None = None  # models see only the central view_m × view_m metres of the table (None: whole frame)
    init: str | None = None  # fine-tune: start from this trained checkpoint (its architecture and config)

    def __post_init__(self) -> None:
        """Refuse settings that would crash or silently mean something else (e.g. epochs 0 = all)."""
        if self.preset not in ("small", "paper"):
            raise BenchbotError(f"unknown preset {shown(self.preset)}", "use small or paper")
        if self.target not in ("classifier", "search", "metric"):
            raise BenchbotError(f"unknown target {shown(self.target)}", "use classifier, search or metric")
        check_number("--batch-size", self.batch_size, 1, 65536, integer=True)
        check_number("--compress", self.compress, 1e-3, 1e6, fix="use a factor > 0, e.g. 10 for a quick run")
        check_number("--seed", self.seed, 0, 2**63 - 1, integer=True)
        check_number("robust_threshold", self.robust_threshold, 0.0, 1.0)
        for flag, value, lo, hi in (("--epochs", self.max_epochs, 1, 10**6),
                                    ("--source-size", self.source_size, 16, 4096),
                                    ("--limit-train", self.limit_train, 1, 10**9),
                                    ("--limit-val", self.limit_val, 1, 10**9)):
            if value is not None:
                check_number(flag, value, lo, hi, integer=True)
        if self.view_m is not None:
            check_number("--view-m", self.view_m, 1e-3, 10.0, fix="use a view side in metres, e.g. 0.4")


def model_overrides(kind: str, input_size: int | None = None, width: int | None = None, coords: bool = False,
                    position_sigma: float | None = None, refine: int | None = None) -> dict[str, Any]:
    """TrainConfig.model_overrides from the command-line options (None / False: the preset's value)."""
    if position_sigma is not None and not position_sigma > 0:
        raise BenchbotError(f"--position-sigma {position_sigma}",
                            "use a positive fraction of the image side, e.g. 0.025")
    if refine is not None and refine < 0:
        raise BenchbotError(f"--refine {refine}", "use 0 or more extra translation passes")
    gq = {"coord_channels": coords or None, "position_sigma": position_sigma, "trans_refine": refine}
    if kind != "gqstn" and any(v is not None for v in gq.values()):
        raise BenchbotError("--coords, --position-sigma and --refine are GQ-STN options", f"drop them for {kind}")
    both = {"input_size": input_size, "backbone_width": width, **gq}
    overrides = {k: v for k, v in both.items() if v is not None}
    (GQSTNConfig if kind == "gqstn" else MultiGraspConfig).small(**overrides)  # range checks, before any data is read
    return overrides


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    last_epoch: int
    stopped_early: bool
    history: list[dict[str, Any]]
    model: nn.Module | None = None  # the model as it ended (the best one is in model_path)


class Step(nn.Module):
    """Model + loss in one module, so DDP wraps a forward that returns (loss, stats)."""

    def __init__(self, model: nn.Module, robust_threshold: float) -> None:
        super().__init__()
        self.model = model
        self.robust_threshold = robust_threshold

    def forward(self, batch: dict[str, torch.Tensor], xi: float, teacher: bool) -> tuple[torch.Tensor, torch.Tensor]:
        nan = float("nan")
        if isinstance(self.model, GQSTN):
            out = self.model(batch["depth"], batch["target"][:, :3] if teacher else None)
            loss, parts = gqstn_loss(out, batch["target"], self.model.cfg, xi)
            p = out.robust_prob()
            robust = float((p >= self.robust_threshold).float().mean()) if p is not None else nan
            stats = [parts["loss"], parts["l_loc"], parts.get("l_rob", nan), robust]
        else:
            assert isinstance(self.model, MultiGrasp)  # a Step wraps a GQ-STN or a MultiGrasp
            loss, parts = multigrasp_loss(self.model(batch["depth"]), batch["grid"], self.model.cfg)
            stats = [parts["loss"], parts["l_conf"], parts["l_reg"], nan]
        return loss, torch.tensor(stats, dtype=torch.float64)


def build(kind: str, cfg: TrainConfig, index: ImageIndex, classifier: nn.Module | None) -> nn.Module:
    """A fresh, seeded model; a GQ-STN gets γ and the depth prior from the training split."""
    torch.manual_seed(cfg.seed)
    if kind == "gqstn":
        base = GQSTNConfig.paper() if cfg.preset == "paper" else GQSTNConfig.small()
        stats = index.target_stats("train")
        crop_scale = index.crop_px / index.side if index.crop_px else 0.0
        mcfg = replace(base, scale_mean=stats["scale_mean"], depth_mean_m=stats["depth_mean_m"], crop_scale=crop_scale,
                       **cfg.model_overrides)
        im_size = getattr(getattr(classifier, "cfg", None), "im_size", None)  # a GQ-CNN's input size
        if im_size is not None:
            mcfg = replace(mcfg, crop_size=int(im_size))
        return GQSTN(mcfg)
    if kind == "multigrasp":
        mg_base = MultiGraspConfig.paper() if cfg.preset == "paper" else MultiGraspConfig.small()
        return MultiGrasp(replace(mg_base, **cfg.model_overrides))
    raise BenchbotError(f"unknown model kind {kind!r}", "use gqstn or multigrasp")


def _batches(stream: ImageStream, batch_size: int) -> DataLoader:
    return DataLoader(stream, batch_size=batch_size, num_workers=0)


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def run_epoch(step: nn.Module, batches: Iterable[dict[str, Any]], device: torch.device, xi: float, teacher: bool,
              optimizer: torch.optim.Optimizer | None, on_batch=None) -> torch.Tensor:
    """One pass; trains when an optimizer is given. → sample-weighted mean stats [loss, a, b, robust]."""
    total, n = torch.zeros(4, dtype=torch.float64), 0
    for batch in batches:
        batch = _to(batch, device)
        with torch.set_grad_enabled(optimizer is not None):
            loss, stats = step(batch, xi, teacher)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        b = batch["depth"].shape[0]
        total += stats.cpu() * b
        n += b
        if on_batch:
            on_batch(stats)
    return total / max(n, 1)


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def _fmt(v: float) -> str:
    return "-" if v != v else f"{v:.4g}"


def _comparable(cfg: TrainConfig, kind: str) -> dict[str, Any]:
    """The config fields a resumed run must share with the interrupted one."""
    d = asdict(cfg)
    return {"kind": kind, **{k: d[k] for k in ("preset", "batch_size", "compress", "source_size", "seed",
                                               "weight_decay", "limit_train", "limit_val", "model_overrides",
                                               "augment", "target", "view_m", "init")}}


def _set_view(index: ImageIndex, view_m: float | None, data_dir: str | Path) -> None:
    """Restrict the models' input to the central view_m-metre square of the table."""
    if view_m is None:
        return
    from benchbot.train.targets import dataset_view

    view = dataset_view(index)
    if view is None:
        raise BenchbotError(f"{data_dir}/meta.json records no camera intrinsics and table distance",
                            "train without --view-m (the whole frame)")
    side = int(round(view_m * view["px_per_m"]))
    if not 32 <= side <= max(index.height, index.width):
        max_view_m = max(index.height, index.width) / view["px_per_m"]
        raise BenchbotError(f"--view-m {view_m} is {side} px on this camera",
                            f"use a view between {32 / view['px_per_m']:.2f} and {max_view_m:.2f} m")
    index.view_side = side


def _classifier_targets(index: ImageIndex, classifier: nn.Module, cfg: TrainConfig, out: Path,
                        device: torch.device) -> None:
    """GQ-STN targets from the frozen classifier (targets.py): its crop footprint (the model's fixed
    crop scale); with target="classifier" the target grasp is the robust one it rates highest, with
    "search" the best-rated grasp found around those."""
    from benchbot.models.gqcnn import GQCNN
    from benchbot.perception.crops import SPECS
    from benchbot.train.targets import cached_scores, cached_search, crop_footprint_px

    if cfg.target not in ("classifier", "search", "metric"):
        raise BenchbotError(f"unknown target {cfg.target!r}", "use classifier, search or metric")
    if not isinstance(classifier, GQCNN):
        if cfg.target != "metric":
            raise BenchbotError(f"{cfg.target} targets need a GQ-CNN classifier", "use target='metric'")
        return
    index.crop_px = crop_footprint_px(index, SPECS[classifier.cfg.crop].crop_px, classifier.cfg.px_per_m)
    if cfg.target != "metric":
        import copy

        from benchbot.models.robustness import GQCNNEvaluator

        evaluator = GQCNNEvaluator(copy.deepcopy(classifier).to(device), threshold=cfg.robust_threshold,
                                   batch_size=1000 if device.type == "cuda" else 100)
        index.scores = cached_scores(index, evaluator, out / "target_scores.npz")
        if cfg.target == "search":
            index.targets = cached_search(index, evaluator, index.scores, out / "search_targets.npz")


def train(kind: str, data_dir: str | Path, out_dir: str | Path, config: TrainConfig | None = None,
          classifier: nn.Module | None = None) -> TrainResult:
    """Train a GQ-STN or MultiGrasp on a dataset folder; resumable; see module doc."""
    cfg = config or TrainConfig()
    out = Path(out_dir)
    device = pick_device(cfg.device)
    ctx = init_from_env(device)
    if ctx.active and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    schedule = cfg.schedule or (gqstn_paper() if kind == "gqstn" else multigrasp_default())
    if cfg.compress != 1.0:
        schedule = compressed(schedule, cfg.compress)
    last = min(schedule.total_epochs, cfg.max_epochs or schedule.total_epochs)

    index = ImageIndex(data_dir, seed=cfg.seed)
    _set_view(index, cfg.view_m, data_dir)
    state_path, model_path, log_path = out / "checkpoint.pt", out / f"{kind}.pt", out / "log.csv"
    state = load_file(state_path, (STATE_FORMAT,)) if state_path.is_file() else None
    if kind == "gqstn":
        if classifier is None:
            from benchbot.models.weights import load_gqcnn

            classifier = load_gqcnn(cfg.model_overrides.get("classifier", GQSTNConfig.classifier))
        _classifier_targets(index, classifier, cfg, out, device)
    if state is not None:
        if state.get("comparable") != _comparable(cfg, kind):
            raise BenchbotError(f"{out} holds a run with different settings", "use a new --out folder")
        model = build_model(kind, state["model"]["config"])
        load_state(model, state["model"]["state_dict"], state_path)
    elif cfg.init:
        model = load_model(cfg.init, kind, attach_classifier=False)[0].train()
    else:
        model = build(kind, cfg, index, classifier)
    if isinstance(model, GQSTN):
        assert classifier is not None  # a GQ-STN's classifier is loaded above
        model.set_classifier(classifier)  # loaded above: the targets need it before the model is built
    model.to(device)
    step = wrap(Step(model, cfg.robust_threshold), ctx, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=schedule.at(1).lr, weight_decay=cfg.weight_decay)
    es = EarlyStopping(schedule.patience, schedule.min_delta)
    history: list[dict[str, Any]] = []
    start, prev_xi, stopped = 1, None, False
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        es = EarlyStopping.from_state(state["early_stopping"])
        torch.set_rng_state(state["rng"])
        start, prev_xi, stopped = int(state["epoch"]) + 1, state["prev_xi"], bool(state["stopped"])
        history = [dict(r) for r in state["history"]]

    grid_cfg = model.cfg if isinstance(model, MultiGrasp) else None
    train_stream = ImageStream(index, "train", cfg.source_size, grid_cfg, cfg.seed, True, ctx.rank, ctx.world,
                               cfg.limit_train, cfg.augment)
    val_stream = ImageStream(index, "val", cfg.source_size, grid_cfg, cfg.seed, False, ctx.rank, ctx.world,
                             cfg.limit_val)
    if len(train_stream.refs) == 0 or len(val_stream.refs) == 0:
        raise BenchbotError(f"{data_dir}: the train/val split has an empty side "
                            f"({len(train_stream.refs)} train, {len(val_stream.refs)} val images with a robust grasp)",
                            "generate more images/objects with `benchbot datagen`")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)

    from benchbot.train.targets import dataset_view

    view = dataset_view(index)  # detectors resample other cameras' frames to it
    epoch = start - 1
    for epoch in range(start, last + 1):
        if stopped:
            break
        plan = schedule.at(epoch)
        for g in optimizer.param_groups:
            g["lr"] = plan.lr
        if prev_xi is not None and plan.xi != prev_xi:
            # new objective: new best, and fresh Adam moments — the old second moments were built on
            # L_loc gradients and would let the first L_rob steps be many times the learning rate
            es = EarlyStopping(schedule.patience, schedule.min_delta)
            optimizer = torch.optim.Adam(params, lr=plan.lr, weight_decay=cfg.weight_decay)
        prev_xi = plan.xi
        t0 = time.perf_counter()
        train_stream.set_epoch(epoch)
        model.train()
        tr = _with_progress(cfg.progress and ctx.is_main, f"{kind} epoch {epoch}/{last}", len(train_stream),
                            cfg.batch_size, functools.partial(run_epoch, step, _batches(train_stream, cfg.batch_size),
                                                              device, plan.xi, plan.teacher_forcing, optimizer))
        model.eval()
        va = run_epoch(step, _batches(val_stream, cfg.batch_size), device, plan.xi, False, None)
        tr, va = ctx.mean(tr), ctx.mean(va)
        improved, stopped = es.update(float(va[0]), plan.early_stop)
        row = {"epoch": epoch, "phase": plan.phase + 1, "xi": plan.xi, "lr": plan.lr,
               "teacher_forcing": int(plan.teacher_forcing), **{f"train_{k}": float(v) for k, v in zip(
                   ("loss", "a", "b", "robust"), tr, strict=True)}, **{f"val_{k}": float(v) for k, v in zip(
                       ("loss", "a", "b", "robust"), va, strict=True)}, "improved": int(improved),
               "seconds": round(time.perf_counter() - t0, 3)}
        history.append(row)
        if ctx.is_main:
            meta = {"epoch": epoch, "val_loss": float(va[0]), "data": str(data_dir), "preset": cfg.preset,
                    "split_by": index.split_by, "seed": cfg.seed, "source_size": cfg.source_size or 0,
                    "image_shape": [index.height, index.width], "view": view,
                    **({"init": str(cfg.init)} if cfg.init else {})}
            if improved or not model_path.is_file():
                save_atomic(model_record(model, meta), model_path)
            save_atomic({"format": STATE_FORMAT, "version": 1, "kind": kind, "epoch": epoch,
                         "model": model_record(model, meta), "optimizer": optimizer.state_dict(),
                         "early_stopping": es.state(), "rng": torch.get_rng_state(), "prev_xi": prev_xi,
                         "stopped": stopped, "history": history, "comparable": _comparable(cfg, kind),
                         "schedule": schedule.to_dict()}, state_path)
            _write_log(log_path, history)
            if cfg.progress:
                from rich.console import Console

                Console(stderr=True).print(
                    f"epoch {epoch}: ξ={plan.xi:g} lr={plan.lr:g} train {_fmt(row['train_loss'])} "
                    f"val {_fmt(row['val_loss'])} robust {_fmt(row['val_robust'])}"
                    + (" *" if improved else "") + (" (early stop)" if stopped else ""))
        ctx.barrier()
    return TrainResult(out, model_path, int(history[-1]["epoch"]) if history else 0, stopped, history, model)


def _with_progress(show: bool, title: str, n_samples: int, batch_size: int, body):
    """Run body(on_batch) under a rich progress bar showing the running loss (or silently)."""
    if not show:
        return body(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[s]}"),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(title, total=math.ceil(n_samples / batch_size), s="")

        def on_batch(stats: torch.Tensor) -> None:
            bar.update(task, advance=1, s=f"loss {float(stats[0]):.4f}")

        return body(on_batch)
