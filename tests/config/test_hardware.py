from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from benchbot.calibration.calfile import Calibration, require_calibration, save_calibration
from benchbot.config.hardware import HardwareConfig, example_hardware_path, load_hardware
from benchbot.core.errors import BenchbotError


def write(tmp_path: Path, data) -> Path:
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def example() -> dict:
    return yaml.safe_load(example_hardware_path().read_text())


def test_example_loads_and_is_real(tmp_path):
    cfg = load_hardware(example_hardware_path())
    assert cfg.robot.kind == "ur5" and cfg.gripper.transport == "serial" and cfg.camera.kind == "kinect2"
    assert cfg.is_real and cfg.camera.median_frames == 5
    assert Path(cfg.calibration).is_absolute()
    assert Path(cfg.calibration).parent == example_hardware_path().parent
    assert Path(cfg.gripper.calibration).parent == example_hardware_path().parent


def test_gripper_address_is_never_implied_by_the_robot(tmp_path):
    """Port 502 on the robot's IP is the UR controller's own Modbus server: never a default."""
    from benchbot.devices.grippers import robotiq_config

    assert load_hardware(write(tmp_path, {})).gripper.transport == "serial"
    wrist = {"robot": {"kind": "ur5", "host": "10.0.0.2"},
             "gripper": {"kind": "robotiq-2f85", "transport": "rtu-tcp", "host": "10.0.0.2"}}
    rc = robotiq_config(load_hardware(write(tmp_path, wrist)).gripper, require_calibration=False)
    assert rc.address == "10.0.0.2:54321"  # e-Series wrist through UR's rs485 URCap
    gateway = {"robot": {"kind": "ur5", "host": "10.0.0.2"},
               "gripper": {"kind": "robotiq-2f85", "transport": "tcp", "host": "10.0.0.7"}}
    gripper = load_hardware(write(tmp_path, gateway)).gripper
    assert robotiq_config(gripper, require_calibration=False).address == "10.0.0.7:502"


def test_defaults_are_a_dry_run_workcell(tmp_path):
    cfg = load_hardware(write(tmp_path, {}))
    assert not cfg.is_real and cfg.robot.kind == "dryrun" and cfg.camera.kind == "replay"


@pytest.mark.parametrize("patch, match", [
    ({"robot": {"kind": "ur5", "host": "1.2.3.4", "speed": 3}}, "unknown key 'robot.speed'"),
    ({"robot": {"kind": "ur10"}}, "robot.kind"),
    ({"robot": {"kind": "ur5"}}, "needs 'host'"),
    ({"robot": {"home_joints_rad": [0, 1, 2]}}, "robot.home_joints_rad"),
    ({"robot": {"payload_kg": 7}}, "robot.payload_kg"),
    ({"robot": {"payload_cog_m": [0, 0]}}, "robot.payload_cog_m"),
    ({"gripper": {"port": "fifty"}}, "gripper.port"),
    ({"gripper": {"kind": "robotiq-2f85", "transport": "serial"}}, "serial_port"),
    ({"gripper": {"device_id": 0}}, "gripper.device_id"),
    ({"gripper": {"kind": "robotiq-2f85", "transport": "tcp"}}, "transport 'tcp' needs 'host'"),
    ({"robot": {"kind": "ur5", "host": "10.0.0.2"}, "gripper": {"kind": "robotiq-2f85", "transport": "rtu-tcp"}},
     "never defaults to the robot's IP"),
    ({"robot": {"kind": "ur5", "host": "10.0.0.2"},
      "gripper": {"kind": "robotiq-2f85", "transport": "tcp", "host": "10.0.0.2"}}, "UR controller's own Modbus"),
    ({"gripper": {"port": 0}}, "gripper.port"),
    ({"camera": {"kind": "webcam"}}, "unknown camera kind 'webcam'"),
    ({"camera": {"median_frames": 0}}, "camera.median_frames"),
    ({"workspace": {"min_m": [0, 0, 0], "max_m": [1, -1, 1]}}, "below the matching max_m"),
    ({"table_z_m": 2.0}, "table_z_m"),
    ({"drop_pose": [5, 0, 0.2, 3.14, 0, 0]}, "drop_pose"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_errors_are_one_line_naming_file_and_key(tmp_path, patch, match):
    p = write(tmp_path, patch)
    with pytest.raises(BenchbotError, match=match) as e:
        load_hardware(p)
    line = e.value.one_line()
    assert "\n" not in line and str(p) in line and e.value.fix


def test_not_yaml_and_missing_file(tmp_path):
    p = tmp_path / "hw.yaml"
    p.write_text("robot: [unclosed\n")
    with pytest.raises(BenchbotError, match="not valid YAML"):
        load_hardware(p)
    p.write_text("- a list\n")
    with pytest.raises(BenchbotError, match="mapping"):
        load_hardware(p)
    with pytest.raises(BenchbotError, match="not found"):
        load_hardware(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_yaml(tmp_path):
    sub = tmp_path / "cell"
    sub.mkdir()
    p = sub / "hw.yaml"
    p.write_text(yaml.safe_dump({"calibration": "cal.yaml", "camera": {"kind": "replay", "recording": "rec"}}))
    cfg = load_hardware(p)
    assert cfg.calibration == str(sub / "cal.yaml") and cfg.camera.recording == str(sub / "rec")


def test_require_calibration(tmp_path):
    data = example()
    data["calibration"] = None
    with pytest.raises(BenchbotError, match="no camera-to-robot calibration") as e:
        require_calibration(load_hardware(write(tmp_path, data)))
    assert "benchbot calibrate" in e.value.fix
    data["calibration"] = "cal.yaml"
    cfg = load_hardware(write(tmp_path, data))
    with pytest.raises(BenchbotError, match="not found") as e:
        require_calibration(cfg)
    assert "benchbot calibrate" in e.value.fix
    t = np.eye(4)
    t[:3, 3] = [0.5, 0.0, 1.0]
    save_calibration(tmp_path / "cal.yaml", Calibration(t, "shah+lm", 1.0, 0.1, 12, "2026-01-01T00:00:00+00:00",
                                                        camera_serial="K1"))
    assert np.allclose(require_calibration(cfg).T_base_camera, t)
    data["camera"]["serial"] = "K2"
    with pytest.raises(BenchbotError, match="made for camera K1"):
        require_calibration(load_hardware(write(tmp_path, data)))


def test_config_is_frozen():
    cfg = HardwareConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.table_z_m = 1.0  # type: ignore[misc]


# ---- the hardware workcell: a dry-run bench (dry-run arm, in-process gripper emulator, replay camera)

REPO = Path(__file__).resolve().parents[2]


def _protocol(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "protocols" / "baselines.yaml").read_text())
    data.update(objects=["soup-can"], methods=["centroid"], trials_per_object=2,
                objects_file=str(REPO / "objects.yaml"))
    data["motion"]["hold_s"] = 0.0
    p = tmp_path / "protocol.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_hardware_run_on_a_dry_run_bench_goes_through_the_operator(tmp_path):
    from benchbot.core.interfaces import Judgement
    from benchbot.harness.operator import ScriptedOperator
    from benchbot.harness.runner import RunConfig, Runner
    from benchbot.results.store import Store

    hw = write(tmp_path, {"camera": {"kind": "replay"}})
    cfg = RunConfig(protocol_path=_protocol(tmp_path), db_path=tmp_path / "r.db", results_dir=tmp_path / "res",
                    backend="hardware", hardware=hw, evaluator="none")
    summary = Runner(cfg, operator=ScriptedOperator(default=Judgement("success", "scripted"))).run()
    assert summary.finals == 2
    with Store(tmp_path / "r.db", readonly=True) as store:
        attempts = store.tables(summary.run_id)["attempts"]
    assert set(attempts["outcome_source"]) <= {"scripted", "operator"}


def test_hardware_workcell_pieces(tmp_path):
    from benchbot.config.protocol import load_protocol
    from benchbot.harness.cells.hardware import build_hardware_workcell
    from benchbot.perception.table import TablePlane

    loaded = load_protocol(_protocol(tmp_path))

    class Cfg:
        hardware = write(tmp_path, {"camera": {"kind": "replay"}, "drop_pose": [0.3, -0.3, 0.3, 3.1416, 0, 0]})

    with build_hardware_workcell(loaded, Cfg) as wc:  # building checks the config; entering connects
        assert wc.backend == "hardware" and wc.stage.outcome_source == "operator"
        assert wc.stage.judge(None, None) is None
        assert wc.table_distance_m == pytest.approx(0.664, abs=0.002)  # the fitted plane, along the optical axis
        assert wc.table_prior.tilt_deg == pytest.approx(3.4, abs=0.2) and wc.workspace.polygon_px
        assert np.allclose(wc.drop_pose.position_m, [0.3, -0.3, 0.3])
        assert wc.gripper.status().activated
        assert wc.gripper.grip().position_m == 0.0  # the in-process emulator's finger stops were measured
        assert wc.t_base_camera[2, 3] == pytest.approx(0.663, abs=0.002)
    # a real robot without a calibration is refused before anything moves
    Cfg.hardware = write(tmp_path, {"robot": {"kind": "ur5", "host": "127.0.0.1"}})
    with pytest.raises(BenchbotError, match="calibration"):
        build_hardware_workcell(loaded, Cfg)
    down = np.eye(4)
    down[:3, :3] = np.diag([1.0, -1.0, -1.0])
    down[2, 3] = 0.9
    assert TablePlane.from_calibration(down, 0.1).axis_distance_m == pytest.approx(0.8)
    assert TablePlane.from_calibration(np.eye(4), -0.5) is None  # looking up
    assert TablePlane.from_calibration(down, 1.0) is None  # below the table


def test_ur5_arm_is_built_from_the_robot_section(tmp_path):
    pytest.importorskip("benchbot.devices.arms.ur_rtde")
    from benchbot.devices.arms import ARM_KINDS, arm_factory

    cfg = load_hardware(example_hardware_path())
    arm = arm_factory("ur5")(cfg.robot)
    assert arm.config.host == "192.168.1.10" and arm.config.tcp_offset[2] == pytest.approx(0.174)
    assert tuple(arm.config.home_joints_rad) == tuple(cfg.robot.home_joints_rad)
    assert (arm.config.payload_kg, arm.config.payload_cog_m) == (0.925, (0.0, 0.0, 0.055))
    assert arm.config.rtde_frequency_hz == 125  # passed on to ur_rtde (it was ignored)
    hz = example()
    hz["robot"].update(rtde_frequency_hz=500, payload_kg=1.4, payload_cog_m=[0.0, 0.0, 0.07])
    robot = load_hardware(write(tmp_path, hz)).robot
    arm = arm_factory("ur5")(robot)
    c = arm.config
    assert (c.rtde_frequency_hz, c.payload_kg, c.payload_cog_m) == (500, 1.4, (0.0, 0.0, 0.07))
    assert {"ur5", "dryrun"} <= set(ARM_KINDS)
    with pytest.raises(BenchbotError, match="unknown robot kind"):
        arm_factory("ur10")
