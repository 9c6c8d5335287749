"""Training schedules: per-epoch loss mix ξ, learning rate, teacher forcing, early stopping.

GQ-STN (paper, Adam, L2 1e-7):
  epochs  1–6   ξ = 1    lr 1e-3
  epochs  7–9   ξ = 0.5  lr 2e-4
  epochs 10–12  ξ = 0.2  lr 4e-5
  epochs 13–21  ξ = 0    lr 4e-5
  epochs 22–40  ξ = 0    lr 8e-6   (early stopping allowed)
Teacher forcing (ground-truth translation/rotation feed the next STN) in epochs 1–12.
Epochs are numbered from 1 here and in the logs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phase:
    epochs: int
    xi: float  # weight of L_loc (1 − ξ weighs L_rob); MultiGrasp ignores it
    lr: float
    early_stop: bool = False  # may training stop early during this phase


@dataclass(frozen=True)
class EpochPlan:
    epoch: int  # 1-based
    phase: int  # 0-based index into Schedule.phases
    xi: float
    lr: float
    teacher_forcing: bool
    early_stop: bool


@dataclass(frozen=True)
class Schedule:
    phases: tuple[Phase, ...]
    teacher_epochs: int = 0
    patience: int = 3  # epochs without validation improvement before stopping (in early-stop phases)
    min_delta: float = 0.0

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    def at(self, epoch: int) -> EpochPlan:
        """The plan of a 1-based epoch."""
        if not 1 <= epoch <= self.total_epochs:
            raise ValueError(f"epoch {epoch} outside 1..{self.total_epochs}")
        end = 0
        for i, p in enumerate(self.phases):
            end += p.epochs
            if epoch <= end:
                return EpochPlan(epoch, i, p.xi, p.lr, epoch <= self.teacher_epochs, p.early_stop)
        raise AssertionError("unreachable")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Schedule:
        return Schedule(tuple(Phase(**p) for p in d["phases"]), d.get("teacher_epochs", 0),
                        d.get("patience", 3), d.get("min_delta", 0.0))


def gqstn_paper() -> Schedule:
    return Schedule((Phase(6, 1.0, 1e-3), Phase(3, 0.5, 2e-4), Phase(3, 0.2, 4e-5), Phase(9, 0.0, 4e-5),
                     Phase(19, 0.0, 8e-6, early_stop=True)), teacher_epochs=12, patience=3)


def gqstn_finetune() -> Schedule:
    """Fine-tuning a trained GQ-STN on new data (`--init`): the paper's last phases, ξ = 0 (L_rob
    through the frozen GQ-CNN only) at 4e-5, then at 8e-6 with early stopping; no teacher forcing
    (the model already localizes) and no localization targets needed (any --target gives the same)."""
    return Schedule((Phase(2, 0.0, 4e-5), Phase(8, 0.0, 8e-6, early_stop=True)), patience=2)


def gqstn_finetune_loc() -> Schedule:
    """Fine-tuning that stays on labelled grasps: the paper's ξ = 0.2 phase (0.2·L_loc + 0.8·L_rob, so
    --target matters) at 4e-5, then at 8e-6 with early stopping; no teacher forcing."""
    return Schedule((Phase(2, 0.2, 4e-5), Phase(8, 0.2, 8e-6, early_stop=True)), patience=2)


SCHEDULES = {"paper": gqstn_paper, "finetune": gqstn_finetune, "finetune-loc": gqstn_finetune_loc}


def multigrasp_default() -> Schedule:
    """MultiGrasp: same optimiser, no ξ; 1e-3 then decays, early stopping at the end."""
    return Schedule((Phase(12, 1.0, 1e-3), Phase(9, 1.0, 2e-4), Phase(19, 1.0, 4e-5, early_stop=True)), patience=3)


def compressed(s: Schedule, factor: float) -> Schedule:
    """The same schedule with every phase (and teacher forcing) shortened by `factor` (≥ 1 epoch each):
    for quick CPU runs of the small config."""
    phases = tuple(Phase(max(1, round(p.epochs / factor)), p.xi, p.lr, p.early_stop) for p in s.phases)
    teach = 0
    if s.teacher_epochs:
        full = 0
        for p, q in zip(s.phases, phases, strict=True):  # keep teacher forcing on the same phases
            if full + p.epochs <= s.teacher_epochs:
                teach += q.epochs
            full += p.epochs
    return Schedule(phases, teach, s.patience, s.min_delta)


@dataclass
class EarlyStopping:
    """Tracks the best validation loss; `update` says whether to stop (only in early-stop phases)."""

    patience: int
    min_delta: float = 0.0
    best: float = float("inf")
    bad_epochs: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, value: float, allowed: bool) -> tuple[bool, bool]:
        """→ (improved, stop)."""
        self.history.append(value)
        improved = value < self.best - self.min_delta
        if improved:
            self.best, self.bad_epochs = value, 0
        elif allowed:
            self.bad_epochs += 1
        return improved, allowed and self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta, "best": self.best,
                "bad_epochs": self.bad_epochs, "history": list(self.history)}

    @staticmethod
    def from_state(d: dict[str, Any]) -> EarlyStopping:
        return EarlyStopping(int(d["patience"]), float(d["min_delta"]), float(d["best"]), int(d["bad_epochs"]),
                             [float(v) for v in d["history"]])
