import numpy as np

from benchbot.harness.jawline import measure
from benchbot.types import DepthFrame, Grasp, Intrinsics

K = Intrinsics(500.0, 500.0, 100.0, 100.0, 200, 200)


def _box_frame(half_width_px: int, height_m: float = 0.04, table_m: float = 0.7) -> DepthFrame:
    d = np.full((200, 200), table_m, np.float32)
    d[80:120, 100 - half_width_px:100 + half_width_px] = table_m - height_m
    return DepthFrame(d, K)


def test_measures_box_width_across_jaw_line():
    frame = _box_frame(20)  # 40 px at 0.68 m, f=500 → ≈ 5.4 cm wide
    jaw = measure(frame, Grasp(100, 100, 0.0, 40, 0.69), opening_m=0.085)
    assert not jaw.collision
    assert abs(jaw.object_width_m - 39.5 * 0.69 / 500) < 0.002


def test_empty_grasp_and_collision():
    frame = _box_frame(20)
    assert measure(frame, Grasp(20, 20, 0.0, 40, 0.69), 0.085).object_width_m is None
    wide = _box_frame(45)  # 90 px ≈ 12 cm: wider than the 8.5 cm opening
    assert measure(wide, Grasp(100, 100, 0.0, 40, 0.69), 0.085).collision
    # along the short side (vertical, 40 px) the same box fits
    assert not measure(wide, Grasp(100, 100, np.pi / 2, 40, 0.69), 0.085).collision
