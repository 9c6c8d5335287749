import csv

import pytest
import torch
from torch import nn

from benchbot.core.errors import BenchbotError
from benchbot.models.checkpoint import load_model
from benchbot.train.loop import TrainConfig, train
from benchbot.train.schedule import Phase, Schedule


class StandIn(nn.Module):
    """Tiny frozen GQ-CNN stand-in: (crop, z) → logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(123)
        self.conv = nn.Conv2d(1, 4, 5)
        self.fc = nn.Linear(5, 2)

    def forward(self, crop: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv((crop - z[:, :, None, None]) * 20)).mean(dim=(2, 3))
        return self.fc(torch.cat([f, z], dim=1))


# 3 epochs: 1 localization-only with teacher forcing, 2 mixed; one batch of 4 images per epoch
SCHED = Schedule((Phase(1, 1.0, 3e-3), Phase(2, 0.5, 1e-3, early_stop=True)), teacher_epochs=1, patience=5)
SMALL = {"limit_train": 4, "limit_val": 2}
TINY = {"backbone_width": 4, "input_size": 32, "crop_size": 16}


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"batch_size": 4, "schedule": SCHED, "source_size": 32, "progress": False,
                          "model_overrides": TINY, "target": "metric", **SMALL, **kw})


def test_resume_after_kill_equals_uninterrupted_run(dataset, tmp_path) -> None:
    full = train("gqstn", dataset, tmp_path / "full", cfg(), classifier=StandIn())
    killed = train("gqstn", dataset, tmp_path / "resumed", cfg(max_epochs=1), classifier=StandIn())
    assert killed.last_epoch == 1 and len(killed.history) == 1
    resumed = train("gqstn", dataset, tmp_path / "resumed", cfg(), classifier=StandIn())
    assert resumed.last_epoch == 3 and len(resumed.history) == 3
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["model"]["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in full.history] == [r["val_loss"] for r in resumed.history]
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and rows[0]["teacher_forcing"] == "1"
    model, meta = load_model(full.model_path, "gqstn", classifier=StandIn())
    assert meta["epoch"] >= 1 and model.cfg.crop_size == 16
    with pytest.raises(BenchbotError, match="different settings"):
        train("gqstn", dataset, tmp_path / "full", cfg(seed=5), classifier=StandIn())


def test_tiny_multigrasp_training_lowers_loss(dataset, tmp_path) -> None:
    s = Schedule((Phase(10, 1.0, 1e-2),))
    res = train("multigrasp", dataset, tmp_path / "mg", TrainConfig(batch_size=4, schedule=s, source_size=32,
                progress=False, model_overrides={"backbone_width": 4, "input_size": 32}, **SMALL))
    losses = [r["train_loss"] for r in res.history]
    assert losses[-1] < 0.6 * losses[0]
    model, _ = load_model(res.model_path, "multigrasp")
    assert model.cfg.backbone_width == 4


def test_tiny_gqstn_localization_training_lowers_loss(dataset, tmp_path) -> None:
    s = Schedule((Phase(5, 1.0, 3e-3),), teacher_epochs=5)
    res = train("gqstn", dataset, tmp_path / "g", TrainConfig(batch_size=2, schedule=s, source_size=32,
                progress=False, model_overrides=TINY, limit_train=8, limit_val=2, target="metric",
                augment=False),
                classifier=StandIn())
    losses = [r["train_a"] for r in res.history]  # L_loc
    assert min(losses[-2:]) < 0.8 * losses[0]


def test_gqstn_targets_come_from_the_frozen_gqcnn(dataset, tmp_path) -> None:
    import json

    from benchbot.models.weights import load_gqcnn
    from benchbot.train.data import ImageIndex
    from benchbot.train.targets import crop_footprint_px

    with pytest.raises(BenchbotError, match="records no camera"):
        train("gqstn", dataset, tmp_path / "v", TrainConfig(view_m=0.5, progress=False), classifier=StandIn())
    meta = json.loads((dataset / "meta.json").read_text())
    meta.update(camera_intrinsics={"fx": 60.0, "fy": 60.0, "cx": 31.5, "cy": 23.5}, table_distance_m=0.75)
    (dataset / "meta.json").write_text(json.dumps(meta))
    s = Schedule((Phase(1, 0.5, 1e-3),))
    res = train("gqstn", dataset, tmp_path / "g", TrainConfig(batch_size=4, schedule=s, source_size=32, progress=False,
                model_overrides={"backbone_width": 4, "input_size": 32}, view_m=0.5, **SMALL),
                classifier=load_gqcnn("gqcnn-4.0-pj"))
    assert (tmp_path / "g" / "target_scores.npz").is_file() and res.history[0]["train_b"] > 0  # L_rob was computed
    gqcnn = load_gqcnn("gqcnn-4.0-pj")
    px = crop_footprint_px(ImageIndex(dataset), 96, gqcnn.cfg.px_per_m)
    assert res.model.cfg.crop_size == 96 and res.model.cfg.crop_scale == pytest.approx(px / 40)
    assert res.model.cfg.scale_mean == pytest.approx(3 * 12 / 40)  # γ from s = 3·w (fixture widths: 12 px)
    _, meta = load_model(res.model_path, "gqstn", classifier=StandIn())
    assert meta["view"] == {"px_per_m": pytest.approx(80.0), "side": 40, "table_distance_m": 0.75}  # 0.5 m: 40 px
    with pytest.raises(BenchbotError, match="need a GQ-CNN"):
        train("gqstn", dataset, tmp_path / "h", TrainConfig(schedule=s, progress=False), classifier=StandIn())


def test_adam_moments_restart_when_the_objective_changes(dataset, tmp_path) -> None:
    s = Schedule((Phase(2, 1.0, 1e-3), Phase(1, 0.5, 1e-3)), teacher_epochs=3)
    train("gqstn", dataset, tmp_path / "g", TrainConfig(batch_size=4, schedule=s, source_size=32, progress=False,
          model_overrides=TINY, target="metric", **SMALL), classifier=StandIn())
    state = torch.load(tmp_path / "g" / "checkpoint.pt", weights_only=True)["optimizer"]["state"]
    assert {int(v["step"]) for v in state.values()} == {1}  # one batch since the ξ change, not 3


def test_early_stop_reports_the_last_epoch_it_ran(dataset, tmp_path) -> None:
    s = Schedule((Phase(6, 1.0, 0.0, early_stop=True),), teacher_epochs=6, patience=1)  # lr 0: soon no improvement
    res = train("gqstn", dataset, tmp_path / "g", TrainConfig(batch_size=4, schedule=s, source_size=32, progress=False,
                model_overrides=TINY, target="metric", **SMALL), classifier=StandIn())
    assert res.stopped_early and res.last_epoch == len(res.history) == res.history[-1]["epoch"] < 6


def test_init_fine_tunes_from_a_trained_checkpoint(dataset, tmp_path) -> None:
    first = train("gqstn", dataset, tmp_path / "a", cfg(), classifier=StandIn())
    frozen = Schedule((Phase(1, 0.0, 0.0),))  # lr 0: the parameters must stay those of --init
    res = train("gqstn", dataset, tmp_path / "b", cfg(init=str(first.model_path), schedule=frozen),
                classifier=StandIn())
    a, meta_a = load_model(first.model_path, "gqstn", classifier=StandIn())
    b, meta_b = load_model(res.model_path, "gqstn", classifier=StandIn())
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    assert meta_b["init"] == str(first.model_path) and "init" not in meta_a
    fresh = train("gqstn", dataset, tmp_path / "c", cfg(schedule=frozen), classifier=StandIn())
    pc = dict(load_model(fresh.model_path, "gqstn", classifier=StandIn())[0].named_parameters())
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)  # without --init: a fresh model
