"""Schema v3: detections carry a `perception` JSON column (table plane, workspace, why q is NULL);
a v1 database is migrated in place, its rows kept with perception NULL."""
import json
import sqlite3

from benchbot.config.protocol import default_protocol_path, load_protocol
from benchbot.config.schedule import make_schedule
from benchbot.results import schema as store_schema
from benchbot.results.store import (
    SCHEMA_VERSION,
    AttemptRecord,
    DetectionRecord,
    OutcomeRecord,
    Store,
    utc_now,
)

from .test_store import info

PLANE = {"normal": [0.01, -0.06, -0.998], "distance_m": 0.6632, "source": "fit", "tilt_deg": 3.4}


def _attempt(trial, perception):
    d = DetectionRecord("gqstn", 100.0, 120.0, 0.3, 40.0, 0.68, None, None, None, 0.5, "gqcnn-4.0-pj",
                        0.01, 0.02, 0.3, 0.003, None, perception=perception)
    return AttemptRecord("run-1", trial.trial_id, 1, "final", utc_now(), utc_now(), d,
                         OutcomeRecord("simulated", False, "missed"), [], {"detect": 0.3}, None)


def test_perception_is_stored_and_a_v1_database_is_migrated(tmp_path):
    schedule = make_schedule(load_protocol(default_protocol_path()))
    path = tmp_path / "r.db"
    conn = sqlite3.connect(path)  # a results database written by the previous release (schema v1)
    store_schema.MIGRATIONS[0](conn)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    assert SCHEMA_VERSION == 4  # v2: the file journal, v3: detections.perception, v4: attempt_facts
    with Store(path) as s:
        assert "perception" in s.db["detections"].columns_dict
        s.create_run(info(), schedule[:2])
        s.record_attempt(_attempt(schedule[0], {"table_plane": PLANE, "q_null_reason": "crop leaves the frame"}))
        s.record_attempt(_attempt(schedule[1], None))
        a = s.tables("run-1")["attempts"]
    got = json.loads(a.loc[a["trial_id"] == schedule[0].trial_id, "perception"].iloc[0])
    assert got == {"table_plane": PLANE, "q_null_reason": "crop leaves the frame"}
    assert a.loc[a["trial_id"] == schedule[1].trial_id, "perception"].isna().all()
    assert a["q_robust"].isna().all()
