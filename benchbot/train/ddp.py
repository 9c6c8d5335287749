"""Multi-GPU / multi-node training through `torchrun` + DistributedDataParallel.

    torchrun --nproc_per_node 4 -m benchbot.train.ddp gqstn --data DIR --out RUN [--preset paper]
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 --nproc_per_node 8 \
        -m benchbot.train.ddp gqstn --data DIR --out RUN

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_from_env` joins the
process group (NCCL on GPUs, gloo on CPU). Every rank streams its own stride of the samples
(data.ImageStream rank/world), gradients are averaged by DDP, validation figures are averaged over
ranks, and only rank 0 writes checkpoints and logs. `spawn_local` runs the same on one machine
without torchrun (tests use it with 2 CPU processes on gloo).
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over ranks (identity on one process)."""
        if not self.active:
            return values
        v = values.detach().clone().float()
        dist.all_reduce(v, op=dist.ReduceOp.SUM)
        return v / self.world

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group described by torchrun's environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local)


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around the (loss-computing) module when distributed; the module itself otherwise."""
    if not ctx.active:
        return module
    ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    fn(*args)


def spawn_local(fn: Callable[..., Any], world: int, *args: Any) -> None:
    """Run fn(*args) in `world` local processes wired like torchrun (gloo on CPU)."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(world, free_port(), fn, args), nprocs=world, join=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point for torchrun: the same options as `benchbot train`."""
    import argparse
    from pathlib import Path

    from benchbot.train.loop import TrainConfig, model_overrides, train

    ap = argparse.ArgumentParser(prog="python -m benchbot.train.ddp")
    ap.add_argument("model", choices=["gqstn", "multigrasp"])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--preset", default="paper", choices=["paper", "small"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--source-size", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--target", default="classifier", choices=["classifier", "search", "metric"])
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--view-m", type=float, default=None)
    ap.add_argument("--compress", type=float, default=1.0)
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--coords", action="store_true")
    ap.add_argument("--position-sigma", type=float, default=None)
    ap.add_argument("--refine", type=int, default=None)
    a = ap.parse_args(argv)
    train(a.model, a.data, a.out, TrainConfig(preset=a.preset, batch_size=a.batch_size, max_epochs=a.epochs,
                                              source_size=a.source_size, seed=a.seed, device=a.device,
                                              target=a.target, augment=not a.no_augment, view_m=a.view_m,
                                              compress=a.compress, model_overrides=model_overrides(
                                                  a.model, a.input_size, a.width, a.coords, a.position_sigma, a.refine),
                                              progress=int(os.environ.get("RANK", "0")) == 0))


if __name__ == "__main__":
    main()
