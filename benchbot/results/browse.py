"""`benchbot browse`: the results database in Datasette (optional extra `browse`), with a
description of every table and column and canned queries (Table II, by object, failures)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchbot.core.errors import BenchbotError
from benchbot.results.schema import PHASES

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "meta": ("Database settings.", {"key": "setting name (schema_version, application)", "value": "its value"}),
    "runs": ("One row per benchmark run.", {
        "run_id": "run id, e.g. 20261125-091500-3fa2", "created_at": "creation time, UTC ISO 8601",
        "protocol_name": "protocol name",
        "protocol_hash": "hash of the protocol and its objects (same hash = same protocol)",
        "protocol_path": "protocol file used", "seed": "schedule and placement seed",
        "backend": "replay | mujoco | hardware",
        "outcome_source": "who judges: simulated | physics | operator | scripted",
        "git_sha": "benchbot's git commit, if run from a checkout", "host": "machine name",
        "versions": "package versions (JSON)",
        "config": "camera, arm, gripper, calibration, evaluator, threshold (JSON)",
        "status": "running | finished | aborted"}),
    "trials": ("The run's schedule: one row per (object, trial index, method), stored once.", {
        "run_id": "run", "trial_id": "object/trial_index/method", "seq": "position in the run's order (0-based)",
        "method": "grasp detection method", "object_id": "object", "trial_index": "1..trials per object",
        "placement_id": "object/trial_index: shared by every method of the slot (paired design)",
        "placement_seed": "seed of the placement", "status": "pending | done | aborted"}),
    "attempts": ("One row per attempt; a trial has at most one counted (final or aborted) attempt.", {
        "id": "attempt id", "run_id": "run", "trial_id": "trial", "attempt_no": "1, 2, ... (redos)",
        "status": "final (counts) | voided (redone, not counted) | aborted (trial ends aborted)",
        "started_at": "UTC ISO 8601", "finished_at": "UTC ISO 8601", "reason": "why voided or aborted",
        "timings": "seconds per phase: place, capture, inpaint, detect, robust, execute, judge, total (JSON)"}),
    "detections": ("The grasp a detector returned for an attempt.", {
        "attempt_id": "attempt", "method": "detector", "row": "grasp centre row (px)",
        "col": "grasp centre column (px)",
        "angle_rad": "grasp angle in the image (rad, CCW from +col)", "width_px": "jaw opening (px)",
        "depth_m": "grasp depth (m)", "score": "detector's own score",
        "q_robust": "GQ-CNN robustness q (NULL: unknown)",
        "robust": "1 if q ≥ threshold", "robust_threshold": "threshold used", "evaluator": "robustness evaluator",
        "capture_s": "capture time (s)", "inpaint_s": "inpainting time (s)",
        "detect_s": "detection time: image capture → grasp, inpainting excluded (s)",
        "robust_s": "q evaluation time (s)",
        "grasp_pose": "grasp pose in the robot base frame (JSON)", "error": "why no usable grasp (counts as a failure)",
        "perception": "what the detector saw (JSON): table plane, workspace mask, why q is NULL"}),
    "outcomes": ("The verdict on an attempt.", {
        "attempt_id": "attempt", "source": "operator | physics | simulated | scripted",
        "success": "1 success, 0 failure, NULL when aborted",
        "cause": "slipped | missed | collision | dropped | other | no grasp | ...",
        "note": "free text"}),
    "artifacts": ("Files written for an attempt (paths relative to the results folder).", {
        "id": "artifact id", "attempt_id": "attempt", "kind": "raw_depth | inpainted_depth | overlay | keyframes",
        "path": "path relative to the results folder"}),
    "events": ("Things that happened to a run besides attempts.", {
        "id": "event id", "run_id": "run", "at": "UTC ISO 8601",
        "kind": "method_unavailable | evaluator_unavailable | resumed | interrupted | merged_from | ...",
        "method": "method concerned, if any", "message": "details (merged_from: JSON provenance)"}),
    "files": ("The journal of files a run was about to write: each path is committed before its file is "
              "created, and a resume deletes only journaled files no committed attempt references.", {
        "id": "journal entry id", "run_id": "run", "path": "path relative to the results folder",
        "at": "UTC ISO 8601"}),
    "attempt_facts": ("Derived, for fast reports: one flat row per attempt with its trial, detection and outcome, "
                      "kept in step with those tables by triggers (schema v4). Holds nothing they do not.", {
        "run_id": "run", "attempt_id": "attempt", "trial_id": "trial", "attempt_no": "1, 2, ... (redos)",
        "seq": "the trial's position in the run's order", "method": "the trial's method",
        "object_id": "the trial's object", "placement_id": "the trial's placement",
        "status": "final | voided | aborted", "reason": "why voided or aborted",
        "duration_ms": "finished_at − started_at (ms)",
        **{f"time_{p}_s": f"the '{p}' phase of attempts.timings (s)"
           for p in PHASES},
        "source": "who judged (the run's outcome source when no verdict is stored)",
        "success": "1 success, 0 failure, NULL when not judged", "cause": "failure cause",
        "q_robust": "GQ-CNN robustness q (NULL: unknown)", "robust": "1 if q ≥ threshold",
        "robust_threshold": "threshold used", "detect_s": "detection time (s)",
        "error": "why the detector gave no usable grasp"}),
}

_RUN = "COALESCE(NULLIF(:run_id, ''), (SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1))"
_ATTEMPTS = f"""WITH a AS (
  SELECT x.id, x.trial_id, x.attempt_no, x.status, x.reason, x.finished_at, t.method, t.object_id,
         COALESCE(o.source, r.outcome_source) AS source, o.success, o.cause, o.note, d.q_robust, d.robust,
         d.detect_s, d.error
  FROM attempts x JOIN runs r ON r.run_id = x.run_id
  JOIN trials t ON t.run_id = x.run_id AND t.trial_id = x.trial_id
  LEFT JOIN outcomes o ON o.attempt_id = x.id LEFT JOIN detections d ON d.attempt_id = x.id
  WHERE x.run_id = {_RUN})"""

QUERIES: dict[str, dict[str, str]] = {
    "table_ii": {"title": "Table II", "description": "Per method and outcome source: judged final attempts, "
                 "successes, success %, robust % (known q), mean detection time. "
                 "Leave run_id empty for the latest run.",
                 "sql": _ATTEMPTS + """
SELECT method, source AS judged_by,
  SUM(status = 'final' AND success IS NOT NULL) AS judged, SUM(status = 'final' AND success = 1) AS successes,
  ROUND(100.0 * SUM(status = 'final' AND success = 1)
        / NULLIF(SUM(status = 'final' AND success IS NOT NULL), 0), 1) AS success_pct,
  ROUND(100.0 * SUM(status = 'final' AND robust = 1)
        / NULLIF(SUM(status = 'final' AND robust IS NOT NULL), 0), 1) AS robust_pct,
  ROUND(AVG(CASE WHEN status = 'final' THEN detect_s END), 4) AS detect_mean_s,
  SUM(status = 'final' AND error IS NOT NULL) AS no_grasp, SUM(status = 'voided') AS voided,
  SUM(status = 'aborted') AS aborted
FROM a GROUP BY method, source ORDER BY method, source"""},
    "by_object": {"title": "Success by object",
                  "description": "Judged final attempts and successes per method and object.",
                  "sql": _ATTEMPTS + """
SELECT method, source AS judged_by, object_id, COUNT(*) AS judged, SUM(success) AS successes,
  ROUND(100.0 * SUM(success) / COUNT(*), 1) AS success_pct
FROM a WHERE status = 'final' AND success IS NOT NULL GROUP BY method, source, object_id ORDER BY method, object_id"""},
    "failures": {"title": "Failures and aborted trials", "description": "Every failed final attempt and aborted trial, "
                 "with its cause, reason and q.", "sql": _ATTEMPTS + """
SELECT trial_id, attempt_no, status, method, object_id, source AS judged_by, cause, COALESCE(reason, error) AS reason,
  note, q_robust, finished_at
FROM a WHERE (status = 'final' AND success = 0) OR status = 'aborted' ORDER BY finished_at"""},
}


def metadata(db_name: str) -> dict[str, Any]:
    """Datasette metadata: a description of every table and column, and the canned queries."""
    tables = {t: {"description": desc, "columns": cols} for t, (desc, cols) in TABLES.items()}
    return {"title": "benchbot results", "description": "Grasp benchmark results (GQ-STN paper protocol). "
            "Canned queries: Table II, success by object, failures.",
            "databases": {db_name: {"tables": tables, "queries": QUERIES}}}


def serve(db: Path, *, host: str = "127.0.0.1", port: int = 8001, open_browser: bool = True) -> None:
    """Serve `db` read-only with Datasette until Ctrl-C."""
    from benchbot.results.store import Store

    try:
        from datasette.cli import cli
    except ImportError:
        raise BenchbotError("benchbot browse needs Datasette", "pip install 'benchbot[browse]'") from None
    Store(db, readonly=True).close()  # refuses anything that is not a benchbot results database
    with tempfile.TemporaryDirectory(prefix="benchbot-browse-") as tmp:
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps(metadata(Path(db).stem)), encoding="utf-8")
        args = ["serve", str(db), "--metadata", str(meta), "--host", host, "--port", str(port),
                "--setting", "sql_time_limit_ms", "20000"] + (["--open"] if open_browser else [])
        cli.main(args=args, prog_name="datasette", standalone_mode=False)
