"""`benchbot doctor`: check a workcell before a run. Pure functions returning `CheckResult`s;
the CLI prints them as a table. Every check has a total deadline (not just a timeout per socket
read) and never raises: a check still running at its deadline is reported FAIL and abandoned."""
from __future__ import annotations

import datetime as dt
import importlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbot.config.hardware import HardwareConfig
from benchbot.core.errors import BenchbotError

RTDE_PORT = 30004  # UR controller's RTDE interface
DASHBOARD_PORT = 29999  # UR dashboard server (robot mode, safety mode)
CALIBRATION_MAX_AGE_DAYS = 30.0
MAX_REPLY_BYTES = 4096  # a dashboard reply line longer than this is not a UR dashboard
# Total seconds per group of checks (a camera needs time to start streaming).
DEADLINES_S = {"robot": 10.0, "home": 10.0, "gripper": 10.0, "camera": 30.0, "calibration": 10.0}


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok, but worth a look (e.g. an old calibration)


def tcp_reachable(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Open (and close) a TCP connection; (ok, detail)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, f"{host}:{port} accepts connections"
    except TimeoutError:
        return False, f"{host}:{port} did not answer within {timeout_s:g} s"
    except OSError as e:
        return False, f"{host}:{port}: {e.strerror or e}"


def dashboard_query(host: str, command: str, port: int = DASHBOARD_PORT, timeout_s: float = 1.0,
                    deadline: float | None = None) -> str:
    """One UR dashboard command → its reply line. Raises OSError on network problems, and
    TimeoutError once `deadline` (a `time.monotonic()` value; default now + timeout_s) passes,
    even if the server keeps trickling bytes."""
    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    with socket.create_connection((host, port), timeout=_left(deadline)) as s:
        _read_line(s, deadline)  # greeting: "Connected: Universal Robots Dashboard Server"
        s.sendall(command.encode() + b"\n")
        return _read_line(s, deadline)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no complete reply before the deadline")
    return left


def _read_line(s: socket.socket, deadline: float) -> str:
    buf = b""
    while b"\n" not in buf:
        if len(buf) > MAX_REPLY_BYTES:
            raise OSError(f"reply longer than {MAX_REPLY_BYTES} bytes without a line end")
        s.settimeout(_left(deadline))
        chunk = s.recv(256)
        if not chunk:
            raise OSError("connection closed before a full reply line")
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def bounded(name: str, deadline_s: float, fix: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run `check` in a daemon thread for at most `deadline_s`; past it (a hung driver call cannot
    be interrupted from Python) report FAIL and leave the thread behind. Exceptions become FAILs."""
    box: list[list[CheckResult]] = []

    def work() -> None:
        try:
            box.append(check())
        except BenchbotError as e:
            box.append([CheckResult(name, False, e.message, e.fix)])
        except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
            box.append([CheckResult(name, False, f"{type(e).__name__}: {e}", fix)])

    t = threading.Thread(target=work, name=f"doctor-{name}", daemon=True)
    t.start()
    t.join(deadline_s)
    if t.is_alive() or not box:
        return [CheckResult(name, False, f"no result within {deadline_s:g} s (check abandoned)", fix)]
    return box[0]


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
    except Exception:  # noqa: BLE001 - a broken native library counts as not importable
        return False


def default_gripper_factory(cfg: HardwareConfig) -> Any:
    from benchbot.devices.grippers import robotiq_config
    from benchbot.devices.grippers.robotiq import RobotiqGripper

    return RobotiqGripper(robotiq_config(cfg.gripper, retries=0, require_calibration=False))


def default_camera_factory(cfg: HardwareConfig) -> Any:
    from benchbot.devices.cameras import make_camera

    return make_camera(cfg)


# ---------------------------------------------------------------- individual checks

def check_robot(cfg: HardwareConfig, timeout_s: float = 1.0, rtde_port: int = RTDE_PORT,
                dashboard_port: int = DASHBOARD_PORT) -> list[CheckResult]:
    r = cfg.robot
    if r.kind == "dryrun":
        return [CheckResult("robot", True, "dry-run arm: no robot needed")]
    out = []
    if _importable("rtde_control") and _importable("rtde_receive"):
        out.append(CheckResult("robot driver", True, "ur-rtde importable"))
    else:
        out.append(CheckResult("robot driver", False, "the 'ur-rtde' package is not installed",
                               "pip install 'benchbot[ur]'"))
    ok, detail = tcp_reachable(r.host or "", rtde_port, timeout_s)
    out.append(CheckResult("robot reachable", ok, f"RTDE {detail}", "" if ok else
                           "power the controller, check the network cable and robot.host; "
                           "enable remote control on e-Series pendants"))
    if ok:
        out.append(_robot_state(r.host or "", dashboard_port, timeout_s))
    return out


def _robot_state(host: str, port: int, timeout_s: float) -> CheckResult:
    deadline = time.monotonic() + 2 * timeout_s  # both queries together
    try:
        mode = dashboard_query(host, "robotmode", port, timeout_s, deadline)
        safety = dashboard_query(host, "safetymode", port, timeout_s, deadline)
    except TimeoutError:
        return CheckResult("robot state", False, f"dashboard server {host}:{port} sent no full reply within "
                           f"{2 * timeout_s:g} s", "check robot.host is the UR controller and its dashboard "
                           "server (port 29999) answers; on e-Series enable remote control")
    except OSError as e:
        return CheckResult("robot state", False, f"dashboard server {host}:{port}: {e}",
                           "check the network; on e-Series enable remote control")
    detail = f"{mode}; {safety}"
    if "NORMAL" not in safety.upper() and "REDUCED" not in safety.upper():
        return CheckResult("robot state", False, detail, "clear the protective/emergency stop on the pendant")
    if "RUNNING" not in mode.upper():
        return CheckResult("robot state", False, detail, "power the arm on and release the brakes on the pendant")
    return CheckResult("robot state", True, detail)


def _probe(name: str, make: Callable[[], Any], read: Callable[[Any], Any], what: str,
           fix: str) -> tuple[Any, CheckResult | None]:
    """Open a device, read once, always close it: (value, None) or (None, the failed check)."""
    device = None
    try:
        device = make()
        return read(device), None
    except BenchbotError as e:
        return None, CheckResult(name, False, e.message, e.fix)
    except Exception as e:  # noqa: BLE001 - doctor reports, never crashes
        return None, CheckResult(name, False, f"{what}: {e}", fix)
    finally:
        if device is not None:
            try:
                device.close()
            except Exception:  # noqa: BLE001
                pass


def check_gripper(cfg: HardwareConfig, factory: Callable[[HardwareConfig], Any] | None = None,
                  timeout_s: float = 1.0) -> list[CheckResult]:
    g = cfg.gripper
    if g.kind == "dryrun":
        return [CheckResult("gripper", True, "dry-run gripper: nothing to reach")]
    out = []
    if g.transport == "serial":
        if not _importable("serial"):
            out.append(CheckResult("gripper driver", False, "pyserial is not installed",
                                   "pip install 'benchbot[robotiq]'"))
            return out
        port = g.serial_port or "/dev/ttyUSB0"
        if not Path(port).exists():
            out.append(CheckResult("gripper reachable", False, f"serial port {port} does not exist",
                                   "plug in the USB–RS-485 adapter or fix gripper.serial_port"))
            return out
        out.append(CheckResult("gripper reachable", True, f"serial port {port} present"))
    else:
        from benchbot.devices.grippers.robotiq import DEFAULT_PORTS

        ok, detail = tcp_reachable(g.host or "", g.port or DEFAULT_PORTS[g.transport], timeout_s)
        out.append(CheckResult("gripper reachable", ok, f"Modbus {g.transport} {detail}", "" if ok else
                               "power the gripper; for rtu-tcp install/enable the UR RS485 URCap; check host/port"))
        if not ok:
            return out
    st, failed = _probe("gripper status", lambda: (factory or default_gripper_factory)(cfg), lambda g: g.status(),
                        "status read failed", "check the Modbus settings")
    if failed is not None:
        out.append(failed)
        return out
    if st.fault:
        out.append(CheckResult("gripper status", False, f"fault: {st.fault}",
                               "clear the fault (reset and re-activate)"))
    elif not st.activated:
        out.append(CheckResult("gripper status", True, "responds, not activated yet (a run activates it)",
                               "keep the fingers clear: activation opens and closes them", warning=True))
    else:
        out.append(CheckResult("gripper status", True, f"activated, opening {st.position_m * 1000:.0f} mm"))
    return out


def check_gripper_calibration(cfg: HardwareConfig) -> list[CheckResult]:
    """The finger stops file of a Modbus gripper (runs refuse to start without it)."""
    from benchbot.devices.grippers.robotiq_calibration import FIX, load_gripper_calibration

    g = cfg.gripper
    if g.kind == "dryrun":
        return []
    if not g.calibration:
        return [CheckResult("gripper calibration", False, "no gripper.calibration in the hardware config",
                            f"{FIX} and set gripper.calibration to its output")]
    try:
        cal = load_gripper_calibration(g.calibration)
    except BenchbotError as e:
        return [CheckResult("gripper calibration", False, e.message, e.fix)]
    return [CheckResult("gripper calibration", True, f"{Path(g.calibration).name}: open gPO {cal.open_position}, "
                        f"closed gPO {cal.closed_position} (0x{cal.closed_position:02X}), {cal.created_at}")]


_CAMERA_MODULES = {"kinect2": ("freenect2", "pip install 'benchbot[kinect2]' (needs libfreenect2 built from source)"),
                   "k4a": ("pyk4a", "pip install 'benchbot[k4a]' (needs the Azure Kinect SDK)"),
                   "k4a-playback": ("pyk4a", "pip install 'benchbot[k4a]' (needs the Azure Kinect SDK)")}


def check_camera(cfg: HardwareConfig, factory: Callable[[HardwareConfig], Any] | None = None) -> list[CheckResult]:
    c = cfg.camera
    out = []
    if c.kind in _CAMERA_MODULES:
        module, fix = _CAMERA_MODULES[c.kind]
        if not _importable(module):
            return [CheckResult("camera driver", False, f"the '{module}' package is not installed", fix)]
        out.append(CheckResult("camera driver", True, f"{module} importable"))
    frame, failed = _probe("camera frame", lambda: (factory or default_camera_factory)(cfg), lambda c: c.capture(),
                           "capture failed", "check the camera connection")
    if failed is not None:
        out.append(failed)
        return out
    valid = frame.valid_mask
    frac = float(valid.mean())
    h, w = frame.shape
    if frac == 0:
        out.append(CheckResult("camera frame", False, f"{w}×{h} frame with no valid depth",
                               "remove the lens cap / check the camera faces the table"))
        return out
    med = float(np.median(frame.depth_m[valid]))
    detail = f"{c.kind} {w}×{h}, {frac:.0%} valid, median depth {med:.3f} m"
    if frac < 0.5:
        out.append(CheckResult("camera frame", True, detail, "much of the image has no depth: check the view",
                               warning=True))
    else:
        out.append(CheckResult("camera frame", True, detail))
    return out


def check_home(cfg: HardwareConfig) -> list[CheckResult]:
    """The configured home (forward kinematics of robot.home_joints_rad with robot.tcp_offset): TCP and
    fingertips inside the workspace, above the table, outside the base keep-out, tool down within the
    tilt limit, wrist and flange inside the box; and the straight line from home to where the camera
    looks (calibration_center_m) clear of the keep-out, as the first move of a run will be."""
    from benchbot.core.types import Pose
    from benchbot.devices.arms.ur_kinematics import arm_points
    from benchbot.devices.safety import SafetyGate, SafetyLimits, tilt_deg

    limits = SafetyLimits(workspace_min_m=cfg.workspace.min_m, workspace_max_m=cfg.workspace.max_m,
                          table_z_m=cfg.table_z_m)
    gate = SafetyGate(limits)
    tcp, points = arm_points(cfg.robot.home_joints_rad, cfg.robot.tcp_offset)
    home = Pose.from_matrix(tcp)
    x, y, z = (float(v) for v in home.position_m)
    detail = f"home TCP at ({x:.3f}, {y:.3f}, {z:.3f}) m, tool {tilt_deg(home.rotation):.1f}° from straight down"
    speed, accel = limits.max_speed_mps, limits.max_accel_mps2
    reason = gate.violation(home, speed, accel) or gate.arm_violation(home, points)
    c = cfg.calibration_center_m
    if reason is None and c is not None:
        reason = gate.violation(Pose(np.array([c[0], c[1], z]), home.rotation), speed, accel, start=home)
        reason = reason and f"the way from home to calibration_center_m: {reason}"
    if reason is not None:
        return [CheckResult("home posture", False, f"{detail}: {reason}",
                            "set robot.home_joints_rad to a tool-down posture beside the workspace "
                            "(see benchbot/config/defaults/hardware.example.yaml)")]
    return [CheckResult("home posture", True, f"{detail}, inside every safety limit")]


def check_calibration_file(cfg: HardwareConfig, now: dt.datetime | None = None,
                           max_age_days: float = CALIBRATION_MAX_AGE_DAYS) -> list[CheckResult]:
    from benchbot.calibration.calfile import load_calibration

    if not cfg.calibration:
        if cfg.is_real:
            return [CheckResult("calibration", False, "no calibration file in the hardware config",
                                "run `benchbot calibrate` and set 'calibration:'")]
        return [CheckResult("calibration", True, "none set (not needed without real hardware)")]
    p = Path(cfg.calibration)
    if not p.is_file():
        return [CheckResult("calibration", False, f"{p} not found", "run `benchbot calibrate` (or fix the path)")]
    try:
        cal = load_calibration(p)
    except BenchbotError as e:
        return [CheckResult("calibration", False, e.message, e.fix)]
    age = cal.age_days(now)
    age_txt = "unknown age" if age is None else f"{age:.1f} days old"
    detail = (f"{p.name}: {cal.n_poses} poses, residual {cal.residual_mm:.1f} mm / {cal.residual_deg:.2f}°, "
              f"{age_txt}")
    if cal.camera_serial and cfg.camera.serial and cal.camera_serial != cfg.camera.serial:
        return [CheckResult("calibration", False, f"{detail}; made for camera {cal.camera_serial}, "
                            f"config uses {cfg.camera.serial}", "re-run `benchbot calibrate` with this camera")]
    if age is None or age > max_age_days:
        return [CheckResult("calibration", True, detail,
                            "verify it with `benchbot check-calibration` (camera or robot may have moved)",
                            warning=True)]
    return [CheckResult("calibration", True, detail)]


def run_checks(cfg: HardwareConfig, gripper_factory: Callable[[HardwareConfig], Any] | None = None,
               camera_factory: Callable[[HardwareConfig], Any] | None = None, timeout_s: float = 1.0,
               now: dt.datetime | None = None, rtde_port: int = RTDE_PORT,
               dashboard_port: int = DASHBOARD_PORT, deadlines_s: dict[str, float] | None = None) -> list[CheckResult]:
    """All checks for one hardware config, in the order a person would fix them; each group is
    bounded by its deadline (`DEADLINES_S`, overridable per group)."""
    limit = {**DEADLINES_S, **(deadlines_s or {})}
    return [*bounded("robot", limit["robot"], "check the robot's network link and robot.host",
                     lambda: check_robot(cfg, timeout_s, rtde_port, dashboard_port)),
            *bounded("home", limit["home"], "check robot.home_joints_rad and the workspace",
                     lambda: check_home(cfg)),
            *bounded("gripper", limit["gripper"], "check the gripper's link and power",
                     lambda: check_gripper(cfg, gripper_factory, timeout_s) + check_gripper_calibration(cfg)),
            *bounded("camera", limit["camera"], "replug the camera; check its driver with the vendor's viewer",
                     lambda: check_camera(cfg, camera_factory)),
            *bounded("calibration", limit["calibration"], "check the calibration file's disk",
                     lambda: check_calibration_file(cfg, now))]


def all_ok(results: list[CheckResult]) -> bool:
    return all(r.ok for r in results)
