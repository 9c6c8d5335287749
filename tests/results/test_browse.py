"""`benchbot browse`: Datasette on a loopback port serves the canned queries; the metadata
describes every table and column of the schema."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchbot.results.browse import QUERIES, TABLES, metadata
from benchbot.results.report import build_report
from benchbot.results.schema import TABLES as SCHEMA_TABLES
from benchbot.results.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_metadata_describes_every_table_and_column(tmp_path):
    Store(tmp_path / "x.db").close()
    with sqlite3.connect(tmp_path / "x.db") as c:
        for table in SCHEMA_TABLES:
            columns = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
            assert table in TABLES and set(TABLES[table][1]) == columns, table
            assert all(TABLES[table][1].values())
    meta = metadata("x")["databases"]["x"]
    assert set(meta["queries"]) == {"table_ii", "by_object", "failures"}
    with sqlite3.connect(tmp_path / "x.db") as c:  # every canned query is valid SQL on the schema
        for q in QUERIES.values():
            c.execute(q["sql"], {"run_id": ""}).fetchall()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, deadline_s=60.0):
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


def test_browse_serves_canned_queries(sim_results):
    pytest.importorskip("datasette")
    db, _results, run_id, _ = sim_results
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchbot.cli", "browse", "--db", str(db), "--port", str(port),
                             "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        rows = get_json(f"http://127.0.0.1:{port}/r/table_ii.json?run_id={run_id}&_shape=array")
        failures = get_json(f"http://127.0.0.1:{port}/r/failures.json?run_id=&_shape=array")
        described = get_json(f"http://127.0.0.1:{port}/-/metadata.json")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with Store(db, readonly=True) as store:
        rep = build_report(store, run_id)
    expected = {r["method"]: (r["judged"], r["successes"]) for r in rep.table.to_dict(orient="records")}
    assert {r["method"]: (r["judged"], r["successes"]) for r in rows} == expected
    assert len(failures) == sum(j - k for j, k in expected.values())
    assert described["databases"]["r"]["tables"]["outcomes"]["columns"]["success"]


def test_browse_without_datasette_names_the_extra(sim_results, tmp_path):
    blocker = tmp_path / "datasette"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    proc = subprocess.run([sys.executable, "-m", "benchbot.cli", "browse", "--db", str(sim_results[0]), "--no-open"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"})
    assert proc.returncode == 2 and "pip install 'benchbot[browse]'" in proc.stderr
