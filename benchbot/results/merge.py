"""`benchbot merge A.db B.db bundle.zip -o all.db`: the runs of several cells in one database.

Run ids stay unique: a run id already taken is refused (default) or, with on_clash="rename",
renamed deterministically to `<run id>-<source name>` (then `-2`, `-3`, ...), its artifact paths
moved under the new id. Every merged run gets a `merged_from` event (provenance: source file and
its sha256, original run id, whether it was renamed). The output is written to a temporary file
and moved into place at the end: a failed merge leaves nothing behind.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from benchbot.core.errors import BenchbotError
from benchbot.results.bundle import DB_NAME, read_bundle
from benchbot.results.copyrun import copy_run, open_target, run_ids, sha256_file
from benchbot.results.gallery import safe_artifact_path
from benchbot.results.store import utc_now

CLASH_POLICIES = ("refuse", "rename")


@dataclass
class Merged:
    source: str
    run_id: str
    new_run_id: str
    artifacts_copied: int = 0

    @property
    def renamed(self) -> bool:
        return self.run_id != self.new_run_id


def _tag(path: Path) -> str:
    stem = path.name[:-len("".join(path.suffixes))] if path.suffixes else path.name
    return re.sub(r"[^A-Za-z0-9_]+", "-", stem).strip("-")[:24] or "src"


def _new_id(run_id: str, taken: set[str], source: Path, on_clash: str, first_source: dict[str, str]) -> str:
    if run_id not in taken:
        return run_id
    if on_clash == "refuse":
        raise BenchbotError(f"run {run_id} is in both {first_source[run_id]} and {source}",
                            "pass --on-clash rename to keep both (renamed <run>-<source>), or merge one of them")
    base = f"{run_id}-{_tag(source)}"
    candidate, k = base, 2
    while candidate in taken:
        candidate, k = f"{base}-{k}", k + 1
    return candidate


def _prefix_rewriter(old: str, new: str):
    def rewrite(path: str) -> str:
        return new + path[len(old):] if old != new and path.startswith(old + "/") else path
    return rewrite


def merge(inputs: list[Path], out: Path, *, on_clash: str = "refuse", results_out: Path | None = None) -> list[Merged]:
    """Merge every run of `inputs` (results .db files or export .zip bundles) into a new `out`."""
    if on_clash not in CLASH_POLICIES:
        raise BenchbotError(f"unknown --on-clash '{on_clash}'", f"use one of: {', '.join(CLASH_POLICIES)}")
    out = Path(out)
    if out.exists():
        raise BenchbotError(f"{out} already exists", "merge into a new file (-o NEW.db)")
    if not inputs:
        raise BenchbotError("nothing to merge", "pass results databases or export bundles")
    for src in inputs:
        if not Path(src).is_file():
            raise BenchbotError(f"{src} not found", "pass existing results .db files or export .zip bundles")
    merged: list[Merged] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="benchbot-merge-", dir=out.parent) as tmp:
        tmp_db = Path(tmp) / "merged.db"
        staged = Path(tmp) / "artifacts"
        conn = open_target(tmp_db)
        try:
            taken: set[str] = set()
            first_source: dict[str, str] = {}
            for i, src in enumerate(map(Path, inputs)):
                db, artifacts = src, None
                if src.suffix.lower() == ".zip":
                    unpacked = Path(tmp) / f"bundle{i}"
                    read_bundle(src, unpacked)
                    db, artifacts = unpacked / DB_NAME, unpacked / "artifacts"
                digest = sha256_file(src)
                for run_id in run_ids(db):
                    new = _new_id(run_id, taken, src, on_clash, first_source)
                    rewrite = _prefix_rewriter(run_id, new)
                    copy_run(conn, db, run_id, new, rewrite)
                    taken.add(new)
                    first_source.setdefault(new, str(src))
                    m = Merged(str(src), run_id, new)
                    if artifacts is not None and results_out is not None:
                        m.artifacts_copied = _stage_artifacts(conn, new, artifacts, staged, run_id)
                    _provenance(conn, m, digest)
                    merged.append(m)
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        if results_out is not None and staged.is_dir():
            _publish_artifacts(staged, Path(results_out))
        tmp_db.replace(out)
    return merged


def _stage_artifacts(conn: sqlite3.Connection, new: str, unpacked: Path, staged: Path, old: str) -> int:
    """Copy a bundle's artifacts of one run into the staging folder under their (rewritten) paths."""
    sql = "SELECT f.path FROM artifacts f JOIN attempts a ON a.id = f.attempt_id WHERE a.run_id = ?"
    n = 0
    with closing(conn.cursor()) as cur:
        for (path,) in cur.execute(sql, [new]):
            original = old + path[len(new):] if new != old and path.startswith(new + "/") else path
            src = safe_artifact_path(unpacked, original)
            if src.is_file():
                dst = safe_artifact_path(staged, path)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                n += 1
    return n


def _publish_artifacts(staged: Path, results_out: Path) -> None:
    """Move staged artifacts into the results folder, refusing to overwrite an existing file."""
    files = [p for p in staged.rglob("*") if p.is_file()]
    for p in files:
        target = results_out / p.relative_to(staged)
        if target.exists():
            raise BenchbotError(f"{target} already exists", "pass an empty or new --results folder")
    for p in files:
        target = results_out / p.relative_to(staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p), target)


def _provenance(conn: sqlite3.Connection, m: Merged, digest: str) -> None:
    message = json.dumps({"source": m.source, "source_sha256": digest, "source_run_id": m.run_id,
                          "renamed": m.renamed, "merged_at": utc_now()}, sort_keys=True)
    with conn:
        conn.execute("INSERT INTO events (run_id, at, kind, method, message) VALUES (?, ?, 'merged_from', NULL, ?)",
                     [m.new_run_id, utc_now(), message])
