import datetime as dt
import socket

import numpy as np
import pytest

from benchbot.calibration.calfile import Calibration, save_calibration
from benchbot.config.hardware import HardwareConfig
from benchbot.core.errors import DeviceError
from benchbot.core.types import DepthFrame, Intrinsics
from benchbot.devices.grippers.robotiq import RobotiqGripper
from benchbot.devices.grippers.robotiq_emulator import start_emulator
from benchbot.harness.doctor import (
    all_ok,
    check_calibration_file,
    check_camera,
    check_gripper,
    check_robot,
    run_checks,
    tcp_reachable,
)


def by_name(results):
    return {r.name: r for r in results}


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    yield s.getsockname()[1]
    s.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tcp_reachable(listener):
    assert tcp_reachable("127.0.0.1", listener, 1.0)[0]
    ok, detail = tcp_reachable("127.0.0.1", closed_port(), 1.0)
    assert not ok and "127.0.0.1" in detail


def test_dry_run_replay_workcell_is_all_green():
    res = run_checks(HardwareConfig())
    assert all_ok(res), res
    assert {"robot", "gripper", "camera frame", "calibration"} <= set(by_name(res))
    assert "640×480" in by_name(res)["camera frame"].detail


class FakeDashboard:
    """Answers UR dashboard commands like a CB3 controller (one command per connection here)."""

    def __init__(self, replies):
        import threading

        self.replies = replies
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rw", encoding="utf-8", newline="\n")
                f.write("Connected: Universal Robots Dashboard Server\n")
                f.flush()
                cmd = f.readline().strip()
                f.write(self.replies.get(cmd, "could not understand: '" + cmd + "'") + "\n")
                f.flush()

    def close(self):
        self.sock.close()


def test_robot_checks(listener):
    cfg = HardwareConfig.model_validate({"robot": {"kind": "ur5", "host": "127.0.0.1"}})
    dash = FakeDashboard({"robotmode": "Robotmode: RUNNING", "safetymode": "Safetymode: NORMAL"})
    try:
        r = by_name(check_robot(cfg, 1.0, rtde_port=listener, dashboard_port=dash.port))
        assert r["robot reachable"].ok
        assert r["robot driver"].ok  # ur-rtde is installed in the test environment
        assert r["robot state"].ok and "RUNNING" in r["robot state"].detail
        dash.replies.update(safetymode="Safetymode: PROTECTIVE_STOP")
        st = by_name(check_robot(cfg, 1.0, rtde_port=listener, dashboard_port=dash.port))["robot state"]
        assert not st.ok and "protective" in st.fix
        dash.replies.update(safetymode="Safetymode: NORMAL", robotmode="Robotmode: IDLE")
        st = by_name(check_robot(cfg, 1.0, rtde_port=listener, dashboard_port=dash.port))["robot state"]
        assert not st.ok and "brakes" in st.fix
    finally:
        dash.close()
    r = by_name(check_robot(cfg, 0.5, rtde_port=closed_port()))
    assert not r["robot reachable"].ok and "robot.host" in r["robot reachable"].fix
    assert "robot state" not in r


def _gripper_cfg(port: int) -> HardwareConfig:
    return HardwareConfig.model_validate(
        {"gripper": {"kind": "emulator", "transport": "tcp", "host": "127.0.0.1", "port": port}})


def test_gripper_against_the_modbus_emulator():
    with start_emulator(framing="tcp", time_scale=50.0) as emu:
        cfg = _gripper_cfg(emu.port)
        r = by_name(check_gripper(cfg))
        assert r["gripper reachable"].ok
        st = r["gripper status"]
        assert st.ok and st.warning and "not activated" in st.detail
        g = RobotiqGripper({"transport": "tcp", "host": "127.0.0.1", "port": emu.port, "activation_timeout_s": 5})
        g.activate()
        g.close()
        st = by_name(check_gripper(cfg))["gripper status"]
        assert st.ok and not st.warning and "activated" in st.detail
        emu.inject_fault(0x0E)
        st = by_name(check_gripper(cfg))["gripper status"]
        assert not st.ok and "fault" in st.detail


def test_gripper_unreachable_and_factory_errors(listener):
    r = by_name(check_gripper(_gripper_cfg(closed_port()), timeout_s=0.5))
    assert not r["gripper reachable"].ok and "gripper status" not in r

    def broken(cfg):
        raise DeviceError("no answer from unit 9", "check device_id")

    st = by_name(check_gripper(_gripper_cfg(listener), broken))["gripper status"]
    assert not st.ok and st.fix == "check device_id"
    serial = HardwareConfig.model_validate(
        {"gripper": {"kind": "robotiq-2f85", "transport": "serial", "serial_port": "/dev/does-not-exist"}})
    r = check_gripper(serial)
    assert not r[-1].ok


def test_gripper_calibration_row(tmp_path):
    from benchbot.devices.grippers.robotiq_calibration import GripperCalibration, save_gripper_calibration
    from benchbot.harness.doctor import check_gripper_calibration

    section = {"kind": "robotiq-2f85", "transport": "serial", "serial_port": "/dev/ttyUSB0"}
    r = check_gripper_calibration(HardwareConfig.model_validate({"gripper": section}))[0]
    assert r.name == "gripper calibration" and not r.ok and "calibrate-gripper" in r.fix
    p = save_gripper_calibration(tmp_path / "gc.yaml", GripperCalibration(3, 0xE4, "2026-01-01T00:00:00+00:00"))
    r = check_gripper_calibration(HardwareConfig.model_validate({"gripper": {**section, "calibration": str(p)}}))[0]
    assert r.ok and "closed gPO 228 (0xE4)" in r.detail
    p.write_text("open_position: 1\n")
    assert not check_gripper_calibration(HardwareConfig.model_validate({"gripper": {**section,
                                                                                    "calibration": str(p)}}))[0].ok
    assert check_gripper_calibration(HardwareConfig()) == []  # dry-run gripper: nothing to calibrate


class FlatCamera:
    def __init__(self, value: float):
        self.intrinsics = Intrinsics(10, 10, 3.5, 2.5, 8, 6)
        self.value = value
        self.closed = False

    def capture(self):
        return DepthFrame(np.full((6, 8), self.value, np.float32), self.intrinsics)

    def close(self):
        self.closed = True


def test_camera_checks():
    cam = FlatCamera(0.7)
    r = by_name(check_camera(HardwareConfig(), lambda cfg: cam))["camera frame"]
    assert r.ok and "8×6" in r.detail and "0.700 m" in r.detail and cam.closed
    assert not by_name(check_camera(HardwareConfig(), lambda cfg: FlatCamera(0.0)))["camera frame"].ok

    def unplugged(cfg):
        raise DeviceError("no Kinect v2 found", "plug it in")

    r = by_name(check_camera(HardwareConfig(), unplugged))["camera frame"]
    assert not r.ok and r.fix == "plug it in"
    k2 = HardwareConfig.model_validate({"camera": {"kind": "kinect2"}})
    r = check_camera(k2)  # freenect2 is not installed here
    assert len(r) == 1 and not r[0].ok and "kinect2" in r[0].fix


def test_calibration_checks(tmp_path):
    real = {"robot": {"kind": "ur5", "host": "10.0.0.2"}}
    r = check_calibration_file(HardwareConfig.model_validate(real))[0]
    assert not r.ok and "calibrate" in r.fix
    p = tmp_path / "cal.yaml"
    save_calibration(p, Calibration(np.eye(4), "shah+lm", 1.2, 0.1, 12, "2026-01-01T00:00:00+00:00",
                                    camera_serial="K1"))
    cfg = HardwareConfig.model_validate({**real, "calibration": str(p)})
    fresh = check_calibration_file(cfg, now=dt.datetime(2026, 1, 3, tzinfo=dt.UTC))[0]
    assert fresh.ok and not fresh.warning and "2.0 days old" in fresh.detail and "12 poses" in fresh.detail
    old = check_calibration_file(cfg, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))[0]
    assert old.ok and old.warning and "check-calibration" in old.fix
    other = HardwareConfig.model_validate({**real, "calibration": str(p), "camera": {"serial": "K2"}})
    assert not check_calibration_file(other)[0].ok
    p.write_text("T_base_camera: nope\n")
    assert not check_calibration_file(cfg)[0].ok
    missing = HardwareConfig.model_validate({**real, "calibration": str(tmp_path / "none.yaml")})
    assert "not found" in check_calibration_file(missing)[0].detail


OLD_HOME = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)  # the tool at −x, behind the robot


@pytest.mark.parametrize("robot, where, words", [
    ({}, {}, None),  # the shipped default
    ({"home_joints_rad": OLD_HOME}, {}, "the way from home to calibration_center_m: path passes 0.0"),
    ({"home_joints_rad": (2.0071, -1.5708, 1.3963, -1.3963 + 0.7, -1.5708, -2.7053)}, {}, "tilted 40.1°"),
    ({}, {"workspace": {"min_m": [-0.7, -0.35, 0.0], "max_m": [0.7, 0.7, 0.7]},
          "drop_pose": [0.3, -0.3, 0.25, 3.1416, 0.0, 0.0]}, r"tool y -0\.3898 m outside workspace"),
    ({}, {"table_z_m": 0.35}, "tool z 0.3260 m is below table_z_m"),
    ({"tcp_offset": (0.0, 0.0, 0.45, 0.0, 0.0, 0.0)}, {"table_z_m": 0.1}, "tool z 0.0500 m is below"),  # FK uses it
    ({"home_joints_rad": (2.0071, -2.4435, 1.7453, -0.8727, -1.5708, -2.7053)}, {},
     "target passes 0.129 m from the base axis"),
    ({}, {"workspace": {"min_m": [-0.7, -0.7, 0.0], "max_m": [0.7, 0.7, 0.55]}}, r"wrist 2 z 0\.5823 m outside"),
])
def test_home_posture_check(robot, where, words):
    from benchbot.harness.doctor import check_home

    cfg = HardwareConfig.model_validate({"robot": {"kind": "dryrun", **robot},
                                         "calibration_center_m": (0.45, 0.0, 0.15), **where})
    [res] = check_home(cfg)
    assert res.name == "home posture"
    if words is None:
        assert res.ok and "home TCP at (0.302, -0.390, 0.326) m, tool 0.0° from straight down" in res.detail
        assert "home posture" in by_name(run_checks(HardwareConfig()))
    else:
        import re

        assert not res.ok and re.search(words, res.detail), res.detail
        assert "home_joints_rad" in res.fix


# ---- every check has a total deadline: a server that trickles bytes cannot hang doctor

class TrickleServer:
    """Accepts connections and sends one byte every `period_s`, forever, never a line end
    (a wrong service, or a dashboard behind a dying link)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, period_s: float = 0.5):
        import threading

        self.period_s = period_s
        self.stop = threading.Event()
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        with conn:
            while not self.stop.wait(self.period_s):
                try:
                    conn.sendall(b"C")
                except OSError:
                    return

    def close(self):
        self.stop.set()
        self.sock.close()


def within(seconds: float, fn):
    """fn()'s result, or a test failure (not a hung test) if it takes longer than `seconds`."""
    import threading

    box = []
    t = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert box, f"still running after {seconds} s"
    return box[0]


def test_dashboard_that_trickles_bytes_fails_within_the_deadline(listener):
    import time

    cfg = HardwareConfig.model_validate({"robot": {"kind": "ur5", "host": "127.0.0.1"}})
    trickle = TrickleServer()
    try:
        t0 = time.monotonic()
        r = by_name(within(8.0, lambda: check_robot(cfg, 1.0, rtde_port=listener, dashboard_port=trickle.port)))
        elapsed = time.monotonic() - t0
    finally:
        trickle.close()
    st = r["robot state"]
    assert not st.ok and "no full reply within 2 s" in st.detail and "29999" in st.fix
    assert elapsed < 3.5


def test_a_check_that_never_returns_is_abandoned_at_its_deadline():
    import threading
    import time

    release = threading.Event()

    class HungCamera:  # a driver call that never returns
        def capture(self):
            release.wait()

        def close(self):
            pass

    t0 = time.monotonic()
    try:
        res = by_name(within(6.0, lambda: run_checks(HardwareConfig(), camera_factory=lambda cfg: HungCamera(),
                                                     deadlines_s={"camera": 1.0})))
    finally:
        release.set()
    assert time.monotonic() - t0 < 4.0
    cam = res["camera"]
    assert not cam.ok and "no result within 1 s" in cam.detail and cam.fix
    assert res["robot"].ok and res["calibration"].ok  # the other checks still ran


def test_unresponsive_gripper_is_bounded_too():
    import time

    with start_emulator(framing="tcp", time_scale=50.0) as emu:
        emu.set_unresponsive(True)
        t0 = time.monotonic()
        r = by_name(within(8.0, lambda: check_gripper(_gripper_cfg(emu.port), timeout_s=0.5)))
        assert time.monotonic() - t0 < 4.0
    st = r["gripper status"]
    assert not st.ok and "no answer" in st.detail and "device_id" in st.fix


def _fake_ur_ports(rng):
    """A free loopback address with the fixed UR ports: RTDE (30004) accepts, the dashboard trickles."""
    for _ in range(20):
        host = f"127.0.{rng.randint(1, 250)}.{rng.randint(2, 250)}"
        try:
            rtde = socket.create_server((host, 30004))
        except OSError:
            continue
        try:
            return host, rtde, TrickleServer(host, 29999)
        except OSError:
            rtde.close()
    pytest.skip("no free loopback address for ports 30004/29999")


def test_doctor_command_finishes_on_a_trickling_dashboard(tmp_path, repo):
    """End to end: `benchbot doctor` against a 'robot' whose dashboard port trickles bytes."""
    import os
    import random
    import subprocess
    import sys
    import time

    host, rtde, trickle = _fake_ur_ports(random.Random())
    hw = tmp_path / "hw.yaml"
    hw.write_text(f"robot: {{kind: ur5, host: '{host}'}}\n")
    try:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "benchbot.cli", "doctor", "--hardware", str(hw)],
                           capture_output=True, text=True, timeout=90, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "250"})
        elapsed = time.monotonic() - t0
    finally:
        trickle.close()
        rtde.close()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "robot state" in r.stdout and "FAIL" in r.stdout and "no full reply" in r.stdout
    assert elapsed < 30
