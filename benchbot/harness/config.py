"""What one `benchbot run` is asked to do, checked before anything is opened; which run it
continues, and how a resumed run keeps the settings it was created with (backend, seed,
threshold, evaluator, recording); what a new run records about itself."""
from __future__ import annotations

import math
import platform
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchbot import __version__
from benchbot.config.protocol import LoadedProtocol
from benchbot.core.errors import BenchbotError
from benchbot.core.paths import SOURCE_CHECKOUT
from benchbot.harness.workcell import BACKENDS
from benchbot.results.store import RUN_ID_PATTERN, RunInfo, Store, check_run_id, utc_now

SEED_MAX = 2**63 - 1  # SQLite INTEGER is int64; numpy seeds must be ≥ 0


@dataclass
class RunConfig:
    protocol_path: Path
    db_path: Path
    results_dir: Path
    backend: str = "replay"          # replay | mujoco | hardware
    method: str = "all"
    seed: int | None = None
    resume: str = "auto"             # auto: continue an unfinished run of the same protocol+backend; no: new run
    run_id: str | None = None
    recording: Path | None = None
    hardware: Path | None = None
    outcomes_csv: Path | None = None
    assume_yes: bool = False
    max_trials: int | None = None    # stop after this many attempts (for demos and tests)
    threshold: float | None = None   # robustness label threshold; default: the protocol's
    evaluator: str | None = None     # robustness evaluator; "none" disables it (q stored as NULL)
    save_overlays: bool = True

    def check(self) -> None:
        """Refuse a wrong value with one line before any file or device is touched."""
        if self.backend not in BACKENDS:
            raise BenchbotError(f"unknown backend '{self.backend}'", f"use one of: {', '.join(BACKENDS)}")
        if self.resume not in ("auto", "no"):
            raise BenchbotError(f"unknown resume mode '{self.resume}'", "use auto or no")
        if self.run_id is not None:
            check_run_id(self.run_id)
        if self.seed is not None and not (_is_int(self.seed) and 0 <= self.seed <= SEED_MAX):
            raise BenchbotError(f"--seed {self.seed} is out of range", f"use an integer from 0 to {SEED_MAX}")
        if self.max_trials is not None and not (_is_int(self.max_trials) and self.max_trials >= 1):
            raise BenchbotError(f"--max-trials {self.max_trials} must be at least 1",
                                "pass a positive number of attempts, or leave it out to run every trial")
        if self.threshold is not None and not (isinstance(self.threshold, (int, float)) and
                                               math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise BenchbotError(f"--threshold {self.threshold} is not a robustness q between 0 and 1",
                                "pass a number from 0 to 1 (e.g. 0.5), or leave it out for the protocol's")
        _check_path(Path(self.db_path), "--db", folder=False)
        _check_path(Path(self.results_dir), "--results", folder=True)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_path(path: Path, option: str, *, folder: bool) -> None:
    """The path can be created or used as a file (folder=False) or folder: no regular file in the way."""
    if path.exists():
        if folder and not path.is_dir():
            raise BenchbotError(f"{option} {path} is a file, not a folder", f"pass a folder to {option}")
        if not folder and path.is_dir():
            raise BenchbotError(f"{option} {path} is a folder, not a database file",
                                f"pass a file path to {option}, e.g. {path / 'benchbot.db'}")
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BenchbotError(f"{option} {path}: {parent} is a file, not a folder",
                                    f"pass a {option} path whose folders are folders")
            return


def resume_mismatch(run: RunInfo, cfg: RunConfig) -> str | None:
    """Why `cfg` asks for something other than what `run` was made with, or None."""
    stored = run.config or {}
    if run.backend != cfg.backend:
        return f"was made with backend {run.backend}, not {cfg.backend}"
    if cfg.seed is not None and cfg.seed != run.seed:
        return f"was made with seed {run.seed}, not {cfg.seed}"
    if cfg.threshold is not None and stored.get("threshold") is not None and cfg.threshold != stored["threshold"]:
        return f"was made with robustness threshold {stored['threshold']}, not {cfg.threshold}"
    if cfg.evaluator is not None and stored.get("evaluator") is not None and cfg.evaluator != stored["evaluator"]:
        return f"was made with robustness evaluator {stored['evaluator']}, not {cfg.evaluator}"
    if cfg.backend == "replay" and cfg.recording is not None:
        made_with = stored.get("recording")
        if made_with is None or Path(made_with).resolve() != Path(cfg.recording).resolve():
            return f"was made with recording {made_with or '(the default)'}, not {cfg.recording}"
    return None


def settings_of(cfg: RunConfig, run: RunInfo | None, loaded: LoadedProtocol) -> RunConfig:
    """The config a session runs with: a resumed run's own seed, threshold, evaluator and
    recording (everything it renders, places and judges follows them); a new run's seed."""
    if run is None:
        return replace(cfg, seed=loaded.protocol.seed if cfg.seed is None else cfg.seed)
    stored = run.config or {}
    recording = cfg.recording or (Path(stored["recording"]) if stored.get("recording") else None)
    return replace(cfg, seed=run.seed, recording=recording,
                   threshold=cfg.threshold if cfg.threshold is not None else stored.get("threshold"),
                   evaluator=cfg.evaluator if cfg.evaluator is not None else stored.get("evaluator"))


def find_run(store: Store | None, loaded: LoadedProtocol, cfg: RunConfig) -> RunInfo | None:
    """The run to resume, or None for a new one. `--run ID` of another protocol or with other
    settings is refused; an automatic resume takes the newest unfinished run that matches."""
    if store is None:
        return None
    if cfg.run_id:
        run = store.get_run(cfg.run_id)
        if run is None:
            return None
        if run.protocol_hash != loaded.protocol_hash:
            raise BenchbotError(f"run {cfg.run_id} was made with another protocol (hash {run.protocol_hash})",
                                "use the protocol file of that run, or start a new run")
        why = resume_mismatch(run, cfg)
        if why:
            raise BenchbotError(f"run {cfg.run_id} {why}", "a resumed run keeps its settings: drop that option, "
                                "or start a new run with --new")
        return run
    if cfg.resume == "no":
        return None
    for run_id in store.unfinished_runs(loaded.protocol_hash):
        run = store.get_run(run_id)
        if run and RUN_ID_PATTERN.fullmatch(run_id) and resume_mismatch(run, cfg) is None:
            return run  # (an id an older benchbot let through cannot name a folder: never resumed)
    return None


def new_run_info(run_id: str, loaded: LoadedProtocol, cfg: RunConfig, outcome_source: str,
                 describe: dict[str, Any]) -> RunInfo:
    """A new run's row: protocol, seed, backend, settings, devices, code version and host."""
    assert cfg.seed is not None, "new_run_info takes the session's settings (settings_of fills in the seed)"
    return RunInfo(run_id=run_id, created_at=utc_now(), protocol_name=loaded.protocol.name,
                   protocol_hash=loaded.protocol_hash, protocol_path=str(loaded.path), seed=cfg.seed,
                   backend=cfg.backend, outcome_source=outcome_source, git_sha=_git_sha(), host=platform.node(),
                   versions=_versions(),
                   config={"recording": str(Path(cfg.recording).resolve()) if cfg.recording else None,
                           "hardware": str(cfg.hardware) if cfg.hardware else None,
                           "threshold": cfg.threshold if cfg.threshold is not None
                           else loaded.protocol.robustness.threshold,
                           "evaluator": cfg.evaluator or loaded.protocol.robustness.evaluator, **describe})


def _git_sha() -> str | None:
    if SOURCE_CHECKOUT is None:  # an installed wheel: no repository of ours to ask
        return None
    try:
        out = subprocess.run(["git", "-C", str(SOURCE_CHECKOUT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    v = {"benchbot": __version__, "python": platform.python_version()}
    for pkg in ("torch", "numpy", "mujoco", "pymodbus", "sqlite-utils"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return v
