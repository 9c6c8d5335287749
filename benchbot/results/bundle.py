"""`benchbot export RUN -o bundle.zip`: everything needed to check and publish one run.

Inside the zip: runs.db (the run alone), artifacts/ (its per-attempt files), report.html (the page,
self-contained), report.md and report.json, protocol/ (the protocol and objects files, verified
against the run's protocol hash), hardware/ (the hardware file and calibration the run used, if
any), logs/ (the run's log, results/<run>/run.log and its rotated run.log.N, when present),
versions.json, manifest.json (sha256 and size of every file) and SHA256SUMS (the same, for
`sha256sum -c`). The zip is written completely or not at all.
"""
from __future__ import annotations

import json
import platform
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from benchbot import __version__
from benchbot.core.errors import BenchbotError
from benchbot.core.logs import RUN_LOG_NAME, is_run_log
from benchbot.results.copyrun import copy_run, open_target, sha256_file, write_atomic
from benchbot.results.gallery import safe_artifact_path
from benchbot.results.store import RUN_ID_PATTERN, RunInfo, Store, utc_now

BUNDLE_FORMAT = "benchbot-bundle"
BUNDLE_VERSION = 1
DB_NAME = "runs.db"


def _resolve_run(db: Path, run_id: str | None) -> RunInfo:
    with Store(db, readonly=True) as store:
        run_id = run_id or store.latest_run_id()
        run = store.get_run(run_id) if run_id else None
    if run is None:
        raise BenchbotError(f"no run {run_id} in {db}" if run_id else f"no runs in {db}",
                            "list the runs with `benchbot runs --db ...`")
    return run


def _protocol_files(run: RunInfo, protocol: Path | None) -> list[tuple[str, Path]]:
    """The run's protocol and objects files, refused unless they hash to the run's protocol hash."""
    from benchbot.config.protocol import load_protocol

    path = Path(protocol) if protocol else Path(run.protocol_path)
    fix = f"pass --protocol with the protocol file this run used (hash {run.protocol_hash})"
    if not path.is_file():
        raise BenchbotError(f"protocol file {path} of run {run.run_id} not found", fix)
    loaded = load_protocol(path)
    if loaded.protocol_hash != run.protocol_hash:
        raise BenchbotError(f"protocol file {path} has hash {loaded.protocol_hash}, the run was made with "
                            f"{run.protocol_hash} (the file changed since)", fix)
    objects = path.parent / loaded.protocol.objects_file
    return [(f"protocol/{path.name}", path), (f"protocol/{objects.name}", objects)]


def _hardware_files(run: RunInfo) -> tuple[list[tuple[str, Path]], list[str]]:
    files, missing = [], []
    for key in ("hardware", "calibration"):
        value = run.config.get(key)
        if not isinstance(value, str) or not value or value.startswith("none"):
            continue
        path = Path(value)
        if path.is_file():
            files.append((f"hardware/{path.name}", path))
        else:
            missing.append(f"{key}: {value}")
    return files, missing


def export_run(db: Path, run_id: str | None, out: Path, results_dir: Path, protocol: Path | None = None) -> dict:
    """Write the bundle of one run to `out`; returns its manifest."""
    from benchbot.results.report import build_report, render

    run = _resolve_run(db, run_id)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise BenchbotError(f"bundle name {out} does not end in .zip", "pass -o NAME.zip")
    files = _protocol_files(run, protocol)
    hw_files, missing = _hardware_files(run)
    files += hw_files
    with tempfile.TemporaryDirectory(prefix="benchbot-export-") as tmp:
        tmp_db = Path(tmp) / DB_NAME
        conn = open_target(tmp_db)
        try:
            copy_run(conn, db, run.run_id, run.run_id)
            conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            conn.close()
        with Store(db, readonly=True) as store:
            artifact_paths = sorted(store.artifact_paths(run.run_id))
        for rel in artifact_paths:
            src = safe_artifact_path(Path(results_dir), rel)
            if src.is_file():
                files.append((f"artifacts/{rel}", src))
            else:
                missing.append(f"artifact: {rel}")
        with Store(tmp_db, readonly=True) as store:
            rep = build_report(store, run.run_id, by_object=True, compare_paper=True, details=True,
                               results_dir=results_dir)
        generated = {"report.html": render(rep, "html"), "report.md": render(rep, "md"),
                     "report.json": render(rep, "json"),
                     "versions.json": json.dumps({"run": run.versions, "exported_by": {
                         "benchbot": __version__, "python": platform.python_version()}}, indent=2, sort_keys=True)}
        files += _run_logs(Path(results_dir), run.run_id, Path(tmp) / "logs")
        for name, text in generated.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
            files.append((name, Path(tmp) / name))
        files.append((DB_NAME, tmp_db))
        files.sort(key=lambda f: f[0])
        file_rows = [{"path": name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for name, p in files]
        manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "run_id": run.run_id,
                    "protocol_hash": run.protocol_hash, "exported_at": utc_now(), "source_db": str(db),
                    "missing": missing, "files": file_rows}
        sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in file_rows)
        zip_tmp = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(zip_tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, path in files:
                z.write(path, name)
            z.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
            z.writestr("SHA256SUMS", sums)
        write_atomic(out, zip_tmp.read_bytes())
    return manifest


def _run_logs(results_dir: Path, run_id: str, into: Path) -> list[tuple[str, Path]]:
    """The run's log and its rotated backups, copied into `into` first (a running run may still
    append to them: the checksum must match the bytes zipped)."""
    if not RUN_ID_PATTERN.fullmatch(run_id):  # ids come from a database: never a path out of the results
        return []
    run_dir = results_dir / run_id
    found = sorted(p for p in run_dir.glob(f"{RUN_LOG_NAME}*") if p.is_file() and is_run_log(f"{run_id}/{p.name}"))
    out = []
    for src in found:
        into.mkdir(exist_ok=True)
        shutil.copyfile(src, into / src.name)
        out.append((f"logs/{src.name}", into / src.name))
    return out


def _member_path(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name or not p.parts:
        raise BenchbotError(f"bundle member {name!r} has an unsafe path", "the bundle is damaged or forged")
    return p


def read_bundle(path: Path, into: Path) -> dict[str, Any]:
    """Verify a bundle's checksums and extract it into `into`; returns its manifest."""
    import hashlib

    try:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read("manifest.json"))
            if manifest.get("format") != BUNDLE_FORMAT:
                raise BenchbotError(f"{path} is not a benchbot bundle", "pass a zip written by `benchbot export`")
            listed = {f["path"]: f for f in manifest["files"]}
            extra = set(z.namelist()) - set(listed) - {"manifest.json", "SHA256SUMS"}
            if extra:
                raise BenchbotError(f"{path}: files not in the manifest: {sorted(extra)[0]}", "re-export the run")
            for name, entry in listed.items():
                data = z.read(name)
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise BenchbotError(f"{path}: {name} does not match its sha256 in the manifest",
                                        "the bundle is damaged: export the run again")
                target = into.joinpath(*_member_path(name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise BenchbotError(f"{path} is not a readable benchbot bundle ({e})",
                            "pass a zip written by `benchbot export`") from None
    return manifest
