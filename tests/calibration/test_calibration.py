import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchbot.calibration.board import BoardSpec, detect_board
from benchbot.calibration.calfile import Calibration, load_calibration, save_calibration
from benchbot.calibration.handeye import solve_hand_eye
from benchbot.calibration.procedure import calibration_poses, run_calibration
from benchbot.calibration.touch import check_calibration, run_touch_check
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.geometry import invert, make_transform, rotation_angle_deg, transform_points
from benchbot.core.types import Intrinsics, Pose
from benchbot.devices.arms.dryrun import DryRunArm
from benchbot.devices.safety import tilt_deg

INTR = Intrinsics(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)
BOARD = BoardSpec()  # charuco 7×5, 50 mm squares
# camera 1.2 m above the base plane, looking down, slightly tilted
X_TRUE = make_transform(Rotation.from_euler("xyz", [180 + 4, 3, 92], degrees=True).as_matrix(), [0.52, 0.03, 1.2])
# board glued under the flange, face down the tool z axis, origin offset so the board is centred
Y_TRUE = make_transform(Rotation.from_euler("z", 7, degrees=True).as_matrix(), [-0.17, -0.12, 0.03])


def render(board: BoardSpec, t_camera_board: np.ndarray, intr: Intrinsics = INTR, px: int = 100) -> np.ndarray:
    """Image of the board seen by a pinhole camera (grey background)."""
    img = board.image(px_per_square=px, margin_px=50)
    s = board.square_m / px
    o = board.image_origin_px(px, 50)
    board_from_img = np.array([[s, 0, -o * s], [0, s, -o * s], [0, 0, 1.0]])
    k = np.array([[intr.fx, 0, intr.cx], [0, intr.fy, intr.cy], [0, 0, 1.0]])
    r, t = t_camera_board[:3, :3], t_camera_board[:3, 3]
    h = k @ np.column_stack([r[:, 0], r[:, 1], t]) @ board_from_img
    return cv2.warpPerspective(img, h, (intr.width, intr.height), flags=cv2.INTER_AREA, borderValue=110)


def random_poses(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for p in calibration_poses([0.5, 0.0, 0.45], n=n, tilt_deg=20):
        out.append(p.as_matrix())
    return out


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return rotation_angle_deg(a[:3, :3].T @ b[:3, :3])


def test_noise_free_recovers_ground_truth():
    a = random_poses(10, np.random.default_rng(0))
    b = [invert(X_TRUE) @ ai @ Y_TRUE for ai in a]
    res = solve_hand_eye(a, b)
    assert np.linalg.norm(res.T_base_camera[:3, 3] - X_TRUE[:3, 3]) * 1000 < 1.0
    assert angle_between(res.T_base_camera, X_TRUE) < 0.1
    assert np.linalg.norm(res.T_gripper_board[:3, 3] - Y_TRUE[:3, 3]) * 1000 < 1.0
    assert res.residual_mm < 0.01 and res.residual_deg < 0.01
    assert len(res.per_pose_mm) == 10
    # the closed form alone is already exact without noise
    lin = solve_hand_eye(a, b, refine=False)
    assert np.allclose(lin.T_base_camera, X_TRUE, atol=1e-6) and lin.method == "shah"


def test_small_noise_gives_small_error_and_honest_residual():
    rng = np.random.default_rng(1)
    a = random_poses(15, rng)
    b = []
    for ai in a:
        bi = invert(X_TRUE) @ ai @ Y_TRUE
        noise = make_transform(Rotation.from_rotvec(rng.normal(0, math.radians(0.2), 3)).as_matrix(),
                               rng.normal(0, 0.001, 3))
        b.append(bi @ noise)
    res = solve_hand_eye(a, b)
    assert np.linalg.norm(res.T_base_camera[:3, 3] - X_TRUE[:3, 3]) * 1000 < 5.0
    assert angle_between(res.T_base_camera, X_TRUE) < 0.5
    assert 0.3 < res.residual_mm < 10.0  # noise shows up in the residual
    assert res.residual_deg > 0.05
    assert res.rejected == []  # honest noise is not mistaken for outliers


def test_a_flipped_board_detection_is_rejected_as_an_outlier():
    a = random_poses(12, np.random.default_rng(2))
    b = [invert(X_TRUE) @ ai @ Y_TRUE for ai in a]
    flip = make_transform(Rotation.from_euler("z", 180, degrees=True).as_matrix(), [0.3, 0.2, 0])
    b[4] = b[4] @ flip  # a symmetric checkerboard read the wrong way round
    res = solve_hand_eye(a, b)
    assert res.rejected == [4]
    assert np.linalg.norm(res.T_base_camera[:3, 3] - X_TRUE[:3, 3]) * 1000 < 0.01
    assert res.per_pose_mm[4] > 100 and res.residual_mm < 0.01
    naive = solve_hand_eye(a, b, reject_outliers=False)
    assert naive.rejected == [] and naive.residual_mm > 10


def test_degenerate_and_too_few_poses():
    a = [make_transform(Rotation.from_euler("z", z, degrees=True).as_matrix(), [0.4 + 0.01 * i, 0, 0.4])
         for i, z in enumerate([0, 30, 60, 90, 120])]
    b = [invert(X_TRUE) @ ai @ Y_TRUE for ai in a]
    with pytest.raises(BenchbotError, match="share one axis"):
        solve_hand_eye(a, b)
    with pytest.raises(BenchbotError, match="need ≥ 3"):
        solve_hand_eye(a[:2], b[:2])
    with pytest.raises(BenchbotError, match="gripper poses but"):
        solve_hand_eye(a, b[:4])
    bad = [np.eye(4) * 2] + b[1:]
    with pytest.raises(BenchbotError, match="invalid rotation"):
        solve_hand_eye(a, bad)


@pytest.mark.parametrize("kind", ["charuco", "checkerboard"])
def test_board_detection_on_rendered_image(kind):
    board = BoardSpec(kind=kind, cols=7 if kind == "charuco" else 8, rows=5)
    t = make_transform(Rotation.from_euler("xyz", [12, -8, 20], degrees=True).as_matrix(), [-0.15, -0.1, 0.75])
    obs = detect_board(render(board, t), board, INTR)
    assert obs is not None
    assert np.linalg.norm(obs.T_camera_board[:3, 3] - t[:3, 3]) * 1000 < 3.0
    assert angle_between(obs.T_camera_board, t) < 0.5
    assert obs.reprojection_px < 0.5
    assert detect_board(np.full((480, 640), 128, np.uint8), board, INTR) is None


def test_detection_accepts_wide_range_ir_images():
    t = make_transform(np.eye(3), [-0.15, -0.1, 0.7])
    ir = render(BOARD, t).astype(np.float32) * 250.0  # Kinect-like float IR range
    assert detect_board(ir, BOARD, INTR) is not None


class BoardOnGripperCamera:
    """Fixed camera at X_TRUE that sees the board carried by the dry-run arm's gripper."""

    def __init__(self, arm: DryRunArm) -> None:
        self.arm = arm
        self.intrinsics = INTR

    def capture_ir(self) -> np.ndarray:
        t_camera_board = invert(X_TRUE) @ self.arm.current_pose().as_matrix() @ Y_TRUE
        return render(BOARD, t_camera_board)

    def capture(self):  # pragma: no cover - not used here
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_closed_loop_calibration_with_dry_run_arm(tmp_path):
    arm = DryRunArm()
    arm.connect()
    cam = BoardOnGripperCamera(arm)
    poses = calibration_poses([0.5, 0.0, 0.45], n=12, tilt_deg=18)
    cal, res = run_calibration(arm, cam, poses, BOARD, camera_serial="SN1", camera_kind="fake")
    # rendered images carry sub-pixel detection noise (~0.2 px, ~0.2°): a few mm is the honest bound
    assert np.linalg.norm(cal.T_base_camera[:3, 3] - X_TRUE[:3, 3]) * 1000 < 5.0
    assert angle_between(cal.T_base_camera, X_TRUE) < 0.5
    assert cal.n_poses == 12 and 0 < res.residual_mm < 5.0
    assert len([e for e in arm.log if e.get("cmd") == "move_linear"]) >= 12

    path = save_calibration(tmp_path / "cal.yaml", cal)
    back = load_calibration(path)
    assert np.allclose(back.T_base_camera, cal.T_base_camera, atol=1e-8)
    assert back.camera_serial == "SN1" and back.board == BOARD and back.n_poses == 12
    assert back.age_days() is not None and back.age_days() < 1


def test_calibration_fails_cleanly_when_board_never_seen():
    arm = DryRunArm()
    arm.connect()

    class Blind:
        intrinsics = INTR

        def capture_ir(self):
            return np.zeros((480, 640), np.uint8)

    with pytest.raises(DeviceError, match="board seen in only 0"):
        run_calibration(arm, Blind(), calibration_poses([0.5, 0, 0.45], n=4), BOARD)
    with pytest.raises(BenchbotError, match="no IR"):
        run_calibration(arm, object(), calibration_poses([0.5, 0, 0.45], n=4), BOARD, intr=INTR)


def test_check_calibration_reports_per_point_errors():
    pts_cam = np.array([[0.0, 0.0, 0.7], [0.1, 0.05, 0.72], [-0.1, 0.02, 0.69]])
    truth = transform_points(X_TRUE, pts_cam)
    touched = truth + np.array([[0.001, 0, 0], [0, -0.002, 0], [0, 0, 0.0]])
    rep = check_calibration(X_TRUE, pts_cam, touched)
    assert np.allclose(rep.errors_mm, [1.0, 2.0, 0.0], atol=1e-6)
    assert rep.max_mm == pytest.approx(2.0) and rep.ok(5.0) and not rep.ok(1.5)
    assert rep.rows()[1]["dy_mm"] == -2.0
    with pytest.raises(BenchbotError):
        check_calibration(X_TRUE, pts_cam, touched[:2])


def test_touch_check_with_dry_run_arm():
    arm = DryRunArm()
    arm.connect()
    t_base_board = make_transform(Rotation.from_euler("z", 10, degrees=True).as_matrix() @ np.diag([1, -1, -1]),
                                  [0.35, -0.12, 0.0])  # board flat on the table, face up

    class TableCamera:
        intrinsics = INTR

        def capture_ir(self):
            return render(BOARD, invert(X_TRUE) @ t_base_board)

    corners = transform_points(t_base_board, BOARD.corner_points())
    # a calibration 3 mm off along x: the check must see it
    off = X_TRUE.copy()
    off[0, 3] += 0.003
    cal = Calibration(off, "test", 0.0, 0.0, 10, "2026-01-01T00:00:00+00:00")

    class Hand:  # the operator guides the TCP onto the true corner in freedrive
        def __init__(self):
            self.i = 0

        def confirm(self, message):
            assert "Freedrive is on" in message
            with pytest.raises(DeviceError, match="freedrive"):  # nothing commands the arm meanwhile
                arm.move_linear(arm.current_pose(), 0.01, 0.1)
            target = corners[[0, -1][self.i]]
            self.i += 1
            arm.guide(Pose(target, np.diag([1.0, -1, -1])))
            return True

    rep = run_touch_check(arm, TableCamera(), BOARD, cal, Hand(), indices=(0, -1))
    assert rep.errors_mm.shape == (2,)
    assert np.all(np.abs(rep.errors_mm - 3.0) < 1.5)
    assert np.all(np.abs(rep.errors_xyz_mm[:, 0] + 3.0) < 1.5)
    cmds = [e["cmd"] for e in arm.log if e["cmd"] != "connect"]
    touch = ["move_linear", "start_freedrive", "move_linear", "guided", "end_freedrive", "move_linear"]
    assert cmds == touch * 2  # hover, freedrive (a refused move), guided, freedrive off, lift
    assert not arm.freedrive and arm.current_pose().position_m[2] == pytest.approx(corners[-1][2] + 0.03)

    class Cancels:
        def confirm(self, message):
            return False

    with pytest.raises(BenchbotError, match="cancelled"):
        run_touch_check(arm, TableCamera(), BOARD, cal, Cancels(), indices=(0,))
    assert not arm.freedrive and arm.log[-1]["cmd"] == "end_freedrive"


def test_load_calibration_errors_are_one_line(tmp_path):
    p = tmp_path / "cal.yaml"
    cal = Calibration(X_TRUE, "shah+lm", 0.5, 0.05, 12, "2026-01-01T00:00:00+00:00")
    save_calibration(p, cal)
    text = p.read_text()
    p.write_text(text + "extra_key: 1\n")
    with pytest.raises(BenchbotError, match="unknown key 'extra_key'") as e:
        load_calibration(p)
    assert "\n" not in e.value.one_line() and "calibrate" in e.value.fix
    p.write_text(text.replace("n_poses: 12", "n_poses: lots"))
    with pytest.raises(BenchbotError, match="n_poses"):
        load_calibration(p)
    bad = X_TRUE.copy()
    bad[:3, :3] *= 2
    p.write_text(text.replace(str(round(float(X_TRUE[0, 0]), 9)), str(round(float(bad[0, 0]), 9)), 1))
    with pytest.raises(BenchbotError, match="rotation"):
        load_calibration(p)
    with pytest.raises(BenchbotError, match="not found"):
        load_calibration(tmp_path / "missing.yaml")


def test_printable_board_image_has_true_scale(tmp_path):
    from PIL import Image

    from benchbot.calibration.board import save_board_image

    p = save_board_image(tmp_path / "board.png", BOARD, dpi=200, margin_m=0.01)
    im = Image.open(p)
    assert round(im.info["dpi"][0]) == 200
    px = round(BOARD.square_m / 0.0254 * 200)
    assert im.size == (7 * px + 2 * round(0.01 / 0.0254 * 200), 5 * px + 2 * round(0.01 / 0.0254 * 200))
    # the file itself is a fronto-parallel view the detector reads, with all 24 corners
    img = np.array(im)
    k = Intrinsics(1000.0, 1000.0, img.shape[1] / 2, img.shape[0] / 2, img.shape[1], img.shape[0])
    obs = detect_board(img, BOARD, k)
    assert obs is not None and len(obs.object_points) == 24


def test_board_spec_validation():
    with pytest.raises(ValueError, match="smaller than square_m"):
        BoardSpec(square_m=0.03, marker_m=0.04)
    with pytest.raises(ValueError):
        BoardSpec(dictionary="DICT_99X99")
    assert BoardSpec(kind="checkerboard", cols=8, rows=5).corner_points().shape == (40, 3)
    assert BoardSpec().corner_points().shape == (24, 3)


# ---- the CLI workflows on a dry-run bench

def _hw(tmp_path, **extra):
    import yaml

    data = {"robot": {"kind": "dryrun"}, "camera": {"kind": "replay", "serial": "CAM7"}, **extra}
    data["camera"].setdefault("serial", "CAM7")
    p = tmp_path / "hw.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _gated_dry_run_arm(**limits):
    from benchbot.devices.safety import GatedArm, SafetyGate, SafetyLimits

    gate = SafetyGate(SafetyLimits(**limits))
    arm = GatedArm(DryRunArm(gate=gate), gate)
    arm.connect()
    return arm


def test_calibrate_hardware_end_to_end(tmp_path):
    from benchbot.calibration.workflows import calibrate_hardware, check_hardware
    from benchbot.devices.safety import make_gated_arm

    camera = BoardOnGripperCamera(None)  # type: ignore[arg-type]
    made = []

    def factory(cfg, **limits):  # the default gated arm: a dry-run UR5 twin, tilt allowance from calibrate
        made.append(limits)
        camera.arm = make_gated_arm(cfg, **limits)
        return camera.arm

    hw = _hw(tmp_path, calibration="cal.yaml", calibration_center_m=[0.5, 0.0, 0.4])
    cal, res, path = calibrate_hardware(hw, n_poses=12, arm_factory=factory, camera_factory=lambda cfg: camera,
                                        sleep=lambda s: None)
    arm = camera.arm
    assert made == [{"max_tilt_deg": 35.0}] and arm.gate.limits.max_tilt_deg == 35.0
    assert path == tmp_path / "cal.yaml" and path.is_file()
    assert np.linalg.norm(cal.T_base_camera[:3, 3] - X_TRUE[:3, 3]) * 1000 < 5.0
    assert cal.camera_serial == "CAM7" and cal.camera_kind == "replay"
    # every motion went through the safety gate, the board was tilted 35°, and it ended at home
    tilts = [tilt_deg(Pose.from_rotvec(e["pose"]).rotation) for e in arm.log if e["cmd"] == "move_linear"]
    assert max(tilts) == pytest.approx(35.0, abs=1e-3)
    assert not arm.refused and arm.arm.log[-2]["cmd"] == "home"

    t_base_board = make_transform(np.diag([1.0, -1, -1]), [0.35, -0.12, 0.02])  # on a 2 cm plate
    corners = transform_points(t_base_board, BOARD.corner_points())

    class TableCamera:
        intrinsics = INTR

        def capture_ir(self):
            return render(BOARD, invert(X_TRUE) @ t_base_board)

        def close(self):
            pass

    class Hand:  # guides the arm in freedrive: by hand, not through benchbot's gate
        def __init__(self):
            self.k = iter((0, 5, 18, 23))

        def confirm(self, message):
            arm.arm.guide(Pose(corners[next(self.k)], np.diag([1.0, -1, -1])))
            return True

    rep = check_hardware(hw, Hand(), arm_factory=lambda cfg: _reuse(arm), camera_factory=lambda cfg: TableCamera())
    assert rep.errors_mm.shape == (4,) and rep.max_mm < 6.0
    assert [e["cmd"] for e in arm.log].count("start_freedrive") == 4 and arm.arm.log[-2]["cmd"] == "home"


def _reuse(arm):
    arm.connect()
    return arm


@pytest.mark.parametrize("kind, depth_mode, centre_z, words", [
    ("kinect2", "NFOV_UNBINNED", 0.66, r"0\.57 m from the kinect2 camera: closer than its 0\.5 m minimum range "
                                       r"allows \(need ≥ 0\.58 m\)"),  # poses go 3 cm closer, plus 5 cm
    ("k4a", "NFOV_UNBINNED", 0.66, r"0\.57 m from the k4a camera"),
    ("kinect2", "NFOV_UNBINNED", 0.6, None),  # 0.63 m away
])
def test_calibrate_refuses_a_centre_the_camera_cannot_range(tmp_path, kind, depth_mode, centre_z, words):
    from benchbot.calibration.workflows import calibrate_hardware

    arm = _gated_dry_run_arm(max_tilt_deg=35.0)
    hw = _hw(tmp_path, calibration_center_m=[0.5, 0.0, centre_z], camera={"kind": kind, "depth_mode": depth_mode})
    run = lambda: calibrate_hardware(hw, n_poses=6, arm_factory=lambda cfg, **kw: arm,  # noqa: E731
                                     camera_factory=lambda cfg: BoardOnGripperCamera(arm), sleep=lambda s: None)
    if words is None:
        run()
        return
    with pytest.raises(BenchbotError, match=words) as e:
        run()
    assert "lower calibration_center_m" in e.value.fix
    moves = [e["pose"][:3] for e in arm.arm.log if e["cmd"] == "move_linear"]
    assert moves == [[0.5, 0.0, centre_z]]  # only the untilted look at the centre, then home
    assert arm.arm.log[-2]["cmd"] == "home" and not (tmp_path / "calibration.yaml").exists()


def test_depth_ranges_of_the_supported_cameras():
    from benchbot.calibration.camera_range import allowed_board_distance_m, check_board_distance

    assert allowed_board_distance_m("kinect2", "NFOV_UNBINNED", 0.06) == pytest.approx((0.58, 4.42))
    assert allowed_board_distance_m("k4a", "NFOV_UNBINNED", 0.06) == pytest.approx((0.58, 3.78))
    assert allowed_board_distance_m("k4a", "WFOV_2X2BINNED", 0.06) == pytest.approx((0.33, 2.80))
    assert allowed_board_distance_m("replay", "NFOV_UNBINNED", 0.06) is None
    check_board_distance(0.45, "k4a", "WFOV_2X2BINNED", 0.06)  # fine for the wide mode
    with pytest.raises(BenchbotError, match="beyond its range") as e:
        check_board_distance(4.6, "kinect2", "NFOV_UNBINNED", 0.06)
    assert "closer to the camera" in e.value.fix


def test_calibrate_hardware_needs_a_centre_and_an_ir_camera(tmp_path):
    from benchbot.calibration.workflows import calibrate_hardware

    with pytest.raises(BenchbotError, match="no calibration centre"):
        calibrate_hardware(_hw(tmp_path))
    with pytest.raises(BenchbotError, match="no IR"):  # replay camera: depth only
        calibrate_hardware(_hw(tmp_path, calibration_center_m=[0.5, 0.0, 0.45]), sleep=lambda s: None)
    assert not (tmp_path / "calibration.yaml").exists()


def test_record_from_hardware_stores_the_calibrated_pose(tmp_path):
    from benchbot.devices.cameras.recording import read_recording
    from benchbot.harness.record import record_from_hardware

    save_calibration(tmp_path / "cal.yaml", Calibration(X_TRUE, "t", 1.0, 0.1, 12, "2026-01-01T00:00:00+00:00"))
    hw = _hw(tmp_path, calibration="cal.yaml")
    out = record_from_hardware(hw, tmp_path / "rec", n_frames=2, notes="empty table")
    rec = read_recording(out)
    assert len(rec) == 2 and rec.metadata.camera_kind == "replay" and rec.metadata.serial == "CAM7"
    assert np.allclose(rec.T_camera_world, X_TRUE, atol=1e-6)
    assert rec.table_distance_m == pytest.approx(1.2 / math.cos(math.radians(5)), abs=0.01)


@pytest.mark.parametrize("args, words", [
    (["--center", "a,b,c"], "--center 'a,b,c' is not x,y,z"),
    (["--center", "0.4,0,nan"], "is not x,y,z"),
    (["--tilt", "75"], "calibration tilt 75.0° outside"),
])
def test_calibrate_cli_refuses_bad_centre_and_tilt_in_one_line(tmp_path, capsys, monkeypatch, args, words):
    import sys

    from benchbot import cli

    hw = _hw(tmp_path, calibration_center_m=[0.5, 0.0, 0.4])
    monkeypatch.setattr(sys, "argv", ["benchbot", "calibrate", "--hardware", str(hw), *args])
    with pytest.raises(SystemExit) as e:
        cli.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and "Traceback" not in err
    assert not (tmp_path / "calibration.yaml").exists()
