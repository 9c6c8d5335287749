"""Gripper calibration against the emulator, whose fingers stop where a real 2F-85's do
(closed on nothing: gPO ≈ 0xE4, not 255), and the `benchbot calibrate-gripper` command."""
import os
import subprocess
import sys

import pytest
import yaml

from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.devices.grippers.robotiq import RobotiqConfig, RobotiqGripper
from benchbot.devices.grippers.robotiq_calibration import (
    GripperCalibration,
    calibrate_gripper,
    load_gripper_calibration,
    save_gripper_calibration,
)
from benchbot.devices.grippers.robotiq_emulator import ModelParams, start_emulator
from benchbot.devices.grippers.robotiq_registers import Status

SCALE = 1000.0
REAL = ModelParams(open_stop=3)  # closed_stop keeps the default ≈ 0xE4


def test_calibration_measures_the_stops_and_fixes_the_widths():
    with start_emulator(framing="rtu-tcp", time_scale=SCALE, params=REAL) as emu, \
            RobotiqGripper(emu.client_config(timeout_s=0.5)) as g:
        g.activate()
        # the manual's ends (0, 255) misread an empty closure as ≈ 9 mm between the fingers
        assert g.grip().position_m == pytest.approx(0.085 * (255 - 0xE4) / 255, abs=0.0005)
        cal = calibrate_gripper(g)
        assert (cal.open_position, cal.closed_position) == (3, 0xE4) and not cal.closed_on_contact
        assert emu.status().position == 3  # it leaves the fingers open
        g.use_calibration(cal.open_position, cal.closed_position)
        st = g.grip()
        assert st.position_m == 0.0 and not st.object_detected
        assert g.open(0.085).position_m == pytest.approx(0.085)
        assert g.open(0.04).position_m == pytest.approx(0.04, abs=0.0004)
        g.open(0.085)
        emu.set_object_width(0.05)
        st = g.grip(force=0.5, speed=0.5)
        assert st.object_detected and st.position_m == pytest.approx(0.05, abs=0.0004)


def test_calibration_refuses_an_object_between_the_jaws():
    with start_emulator(framing="tcp", time_scale=SCALE, object_width_m=0.03) as emu, \
            RobotiqGripper(emu.client_config(timeout_s=0.5)) as g:
        with pytest.raises(BenchbotError, match="object is between the jaws") as err:
            calibrate_gripper(g)
        assert "remove it" in err.value.fix
        with pytest.raises(BenchbotError, match="jaws"):
            emu.calibrated_client()


def test_contact_at_the_closed_stop_is_the_fingers_meeting_not_an_object():
    """Fingertips (custom pads) that meet with gOBJ=2 at the closed stop hold nothing."""
    g = RobotiqGripper(RobotiqConfig(open_position=3, closed_position=0xE4))
    met = Status(act=True, gto=True, sta=3, obj=2, position_request=255, position=0xE3)
    held = Status(act=True, gto=True, sta=3, obj=2, position_request=255, position=0xE4 - 20)
    assert not g._to_status(met).object_detected and g._to_status(met).position_m == pytest.approx(0.00038, abs=1e-4)
    assert g._to_status(held).object_detected


def test_file_round_trip_and_one_line_errors(tmp_path):
    cal = GripperCalibration(3, 0xE4, "2026-01-01T00:00:00+00:00", False, "serial /dev/ttyUSB0 unit 9")
    p = save_gripper_calibration(tmp_path / "g" / "gripper_calibration.yaml", cal)
    back = load_gripper_calibration(p)
    assert (back.open_position, back.closed_position, back.gripper, back.path) == (3, 0xE4, cal.gripper, p)
    assert not list(p.parent.glob(".*.tmp"))
    for data, match in [({"open_position": 100, "closed_position": 200, "created_at": "x"}, "at least"),
                        ({"open_position": 0, "closed_position": 300, "created_at": "x"}, "closed_position"),
                        ({"open_position": 0, "closed_position": 228, "created_at": "x", "kP": 1}, "unknown key"),
                        ([1, 2], "mapping")]:
        p.write_text(yaml.safe_dump(data))
        with pytest.raises(BenchbotError, match=match) as err:
            load_gripper_calibration(p)
        assert "calibrate-gripper" in err.value.fix and "\n" not in err.value.one_line()
    with pytest.raises(BenchbotError, match="not found"):
        load_gripper_calibration(tmp_path / "nope.yaml")


def _hw(tmp_path, gripper: dict):
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump({"gripper": gripper}))
    return p


def test_hardware_config_requires_and_uses_the_calibration(tmp_path):
    from benchbot.config.hardware import load_hardware
    from benchbot.devices.grippers import robotiq_config
    from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper_hardware

    section = {"kind": "robotiq-2f85", "transport": "serial", "serial_port": "/dev/ttyUSB0"}
    cfg = load_hardware(_hw(tmp_path, section))
    with pytest.raises(BenchbotError, match="no gripper calibration") as err:
        robotiq_config(cfg.gripper)
    assert "calibrate-gripper" in err.value.fix
    assert robotiq_config(cfg.gripper, require_calibration=False).closed_position == 255  # doctor's status read
    save_gripper_calibration(tmp_path / "gc.yaml", GripperCalibration(2, 0xE5, "2026-01-01T00:00:00+00:00"))
    cfg = load_hardware(_hw(tmp_path, {**section, "calibration": "gc.yaml"}))  # relative to the YAML
    rc = robotiq_config(cfg.gripper)
    assert (rc.open_position, rc.closed_position) == (2, 0xE5)
    with pytest.raises(BenchbotError, match="dryrun"):
        calibrate_gripper_hardware(_hw(tmp_path, {"kind": "dryrun"}))


def test_calibrate_gripper_command_against_a_running_emulator(tmp_path, repo):
    with start_emulator(framing="rtu-tcp", time_scale=SCALE, params=REAL) as emu:
        hw = _hw(tmp_path, {"kind": "emulator", "transport": "rtu-tcp", "host": "127.0.0.1", "port": emu.port})
        env = {**os.environ, "PYTHONPATH": str(repo)}
        r = subprocess.run([sys.executable, "-m", "benchbot.cli", "calibrate-gripper", "--hardware", str(hw)],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "keep the jaws empty" in r.stderr and "closed gPO 228 (0xE4)" in r.stdout
        cal = load_gripper_calibration(tmp_path / "gripper_calibration.yaml")  # beside the hardware YAML
        assert (cal.open_position, cal.closed_position) == (3, 0xE4) and "rtu-tcp" in cal.gripper
        emu.set_object_width(0.02)
        r = subprocess.run([sys.executable, "-m", "benchbot.cli", "calibrate-gripper", "--hardware", str(hw),
                            "--out", str(tmp_path / "other.yaml")], capture_output=True, text=True, timeout=120,
                           env=env, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "Traceback" not in r.stderr and not (tmp_path / "other.yaml").exists()


def test_unreachable_gripper_is_a_one_line_error(tmp_path, repo):
    hw = _hw(tmp_path, {"kind": "robotiq-2f85", "transport": "tcp", "host": "127.0.0.1", "port": 1,
                        "timeout_s": 0.2})
    r = subprocess.run([sys.executable, "-m", "benchbot.cli", "calibrate-gripper", "--hardware", str(hw)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(repo)},
                       cwd=tmp_path)
    assert r.returncode == 2 and "cannot connect" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "gripper_calibration.yaml").exists()


def test_in_process_emulator_clients_are_calibrated():
    with start_emulator(time_scale=SCALE) as emu, emu.calibrated_client(timeout_s=0.5) as g:
        assert g.map.closed_position == ModelParams().closed_stop and g.status().activated
        assert g.grip().position_m == 0.0
    assert issubclass(DeviceError, BenchbotError)


def test_hardware_run_without_gripper_calibration_is_refused_before_any_device_opens(tmp_path, monkeypatch):
    import benchbot.devices.cameras as cameras
    from benchbot.harness.cells.hardware import build_hardware_workcell

    opened = []
    monkeypatch.setattr(cameras, "make_camera", lambda *a, **k: opened.append("camera"))
    hw = _hw(tmp_path, {"kind": "emulator", "transport": "tcp", "host": "127.0.0.1", "port": 5020})

    class Cfg:
        hardware = hw

    with pytest.raises(BenchbotError, match="no gripper calibration"):
        build_hardware_workcell(None, Cfg)
    assert opened == []


def test_unwritable_output_is_a_one_line_error(tmp_path):
    from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper_hardware

    with start_emulator(framing="tcp", time_scale=SCALE) as emu:
        hw = _hw(tmp_path, {"kind": "emulator", "transport": "tcp", "host": "127.0.0.1", "port": emu.port})
        (tmp_path / "adir").mkdir()
        with pytest.raises(BenchbotError, match="is not a file"):
            calibrate_gripper_hardware(hw, tmp_path / "adir")
        assert emu.requests == 0  # refused before the fingers moved
        (tmp_path / "afile").write_text("x")
        with pytest.raises(BenchbotError, match="cannot write .*measured open gPO 0, closed gPO 228"):
            calibrate_gripper_hardware(hw, tmp_path / "afile" / "cal.yaml")
