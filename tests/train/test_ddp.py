from pathlib import Path

import torch

from benchbot.train.ddp import spawn_local
from benchbot.train.loop import TrainConfig, train
from benchbot.train.schedule import Phase, Schedule


def worker(data: str, out: str) -> None:
    cfg = TrainConfig(batch_size=2, schedule=Schedule((Phase(2, 1.0, 1e-3),)), source_size=32, progress=False,
                      model_overrides={"backbone_width": 4, "input_size": 32}, limit_train=4, limit_val=2)
    res = train("multigrasp", data, out, cfg)
    rank = torch.distributed.get_rank()
    world = torch.distributed.get_world_size()
    torch.save({"state": res.model.state_dict(), "world": world, "epochs": res.last_epoch},
               Path(out) / f"rank{rank}.pt")


def test_two_gloo_processes_train_in_lockstep(dataset, tmp_path) -> None:
    out = tmp_path / "run"
    spawn_local(worker, 2, str(dataset), str(out))
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2 and r0["epochs"] == r1["epochs"] == 2
    # DDP averaged the gradients: both replicas hold identical weights after training
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"] if "running" not in k
               and "num_batches" not in k)
    w0 = r0["state"]["head.weight"]
    init = torch.load(out / "checkpoint.pt", weights_only=True)
    assert init["epoch"] == 2 and (out / "multigrasp.pt").is_file() and (out / "log.csv").is_file()
    assert not torch.equal(w0, torch.zeros_like(w0))
