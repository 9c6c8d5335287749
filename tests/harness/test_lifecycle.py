"""Lifecycle on a hardware config pointing at real emulators (the UR controller emulator over
RTDE, the pymodbus 2F-85 emulator): the run lock is taken and every input checked before any
device is touched; building a workcell connects nothing, entering connects, leaving closes."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from benchbot.config.protocol import load_protocol
from benchbot.harness.lock import RunLock
from benchbot.harness.runner import RunConfig
from benchbot.harness.workcell import build_workcell

GOOD_T = [[1, 0, 0, 0.45], [0, -1, 0, 0], [0, 0, -1, 0.7], [0, 0, 0, 1]]


@pytest.fixture
def cell(tmp_path):
    """A UR5 and a 2F-85, both emulated, and a hardware config (with a calibration) naming them."""
    pytest.importorskip("rtde_control", reason="ur-rtde is not installed (pip install 'benchbot[ur]')")
    from benchbot.devices.arms.rtde_emulator_process import start_rtde_emulator
    from benchbot.devices.grippers.robotiq_emulator import start_emulator
    from tests.devices.arms.conftest import _free_loopback

    host = _free_loopback()
    if host is None:
        pytest.skip("no loopback address with free ports 30004/29999/30003")
    arm = start_rtde_emulator(host, time_scale=4.0)
    gripper = start_emulator(time_scale=50.0)
    cal = tmp_path / "hw" / "cal.yaml"
    cal.parent.mkdir()
    cal.write_text(yaml.safe_dump({"T_base_camera": GOOD_T, "method": "park", "residual_mm": 1.0, "residual_deg": 0.1,
                                   "n_poses": 12, "created_at": "2026-11-25T09:00:00+00:00"}))
    (tmp_path / "hw" / "fingers.yaml").write_text(yaml.safe_dump(  # as `benchbot calibrate-gripper` writes it
        {"open_position": 0, "closed_position": 228, "created_at": "2026-11-25T09:00:00+00:00"}))
    hw = tmp_path / "hw" / "hw.yaml"
    hw.write_text(yaml.safe_dump({
        "robot": {"kind": "ur5", "host": host}, "calibration": "cal.yaml", "camera": {"kind": "replay"},
        "gripper": {"kind": "robotiq-2f85", "transport": "tcp", "host": gripper.host, "port": gripper.port,
                    "calibration": "fingers.yaml"}}))
    try:
        yield SimpleNamespace(arm=arm, gripper=gripper, hw=hw)
    finally:
        gripper.stop()
        arm.stop()


def _touched(cell) -> dict:
    return {"rtde_connections": cell.arm.state()["rtde_connections"], "modbus_requests": cell.gripper.requests,
            "gripper_activated": cell.gripper.status().activated}


UNTOUCHED = {"rtde_connections": 0, "modbus_requests": 0, "gripper_activated": False}


def test_building_connects_nothing_entering_connects_leaving_closes(cell, tmp_path, small_protocol):
    cfg = RunConfig(protocol_path=small_protocol, db_path=tmp_path / "r.db", results_dir=tmp_path / "res",
                    backend="hardware", hardware=cell.hw)
    wc = build_workcell("hardware", load_protocol(small_protocol), cfg)
    assert _touched(cell) == UNTOUCHED
    with wc:
        seen = _touched(cell)
        assert seen["rtde_connections"] >= 1 and seen["modbus_requests"] > 0 and seen["gripper_activated"]
        assert wc.arm.arm._c is not None  # RTDE control is held
    assert wc.arm.arm._c is None and wc.gripper._client is None  # ...and released on leaving


def test_a_second_run_is_refused_before_it_touches_the_arm_or_the_gripper(cell, tmp_path, small_protocol, run_cli):
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("".join(f"{o}/{i}/centroid,success\n" for o in ("soup-can", "banana", "sponge")
                                for i in (1, 2)))
    args = ["run", "--hardware", str(cell.hw), "-p", str(small_protocol), "--db", str(tmp_path / "r.db"),
            "--results", str(tmp_path / "res"), "--no-robustness", "--yes", "--outcomes", str(outcomes)]
    with RunLock(tmp_path / "r.db"):  # what a first `benchbot run` on this database holds
        code, _, err = run_cli(args)
    assert code == 2 and "in use by a running benchbot" in err, err[-2000:]
    assert _touched(cell) == UNTOUCHED  # no RTDE takeover, no gripper (re-)activation: the jaws never moved
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "res").exists()


def test_scripted_outcomes_that_miss_a_trial_are_refused_before_any_motion(cell, tmp_path, small_protocol, run_cli):
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("soup-can/1/centroid,success\n")
    args = ["run", "--hardware", str(cell.hw), "-p", str(small_protocol), "--db", str(tmp_path / "r.db"),
            "--results", str(tmp_path / "res"), "--no-robustness", "--yes", "--outcomes", str(outcomes)]
    code, _, err = run_cli(args)
    assert code == 2 and "no outcome for 5 trial(s)" in err, err[-2000:]
    assert _touched(cell) == UNTOUCHED
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "res").exists()
