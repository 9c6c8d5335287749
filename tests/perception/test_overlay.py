"""Overlay pictures never crash and put the grasp where it belongs."""
import numpy as np

from benchbot.core.types import Grasp
from benchbot.perception.overlay import depth_to_gray, draw_grasp, q_color, save_overlay


def _depth():
    d = np.full((120, 160), 0.7, np.float32)
    d[40:80, 60:100] = 0.65
    return d


def test_gray_rendering_near_is_bright_and_invalid_marked():
    d = _depth()
    d[0, 0] = np.nan
    d[0, 1] = 0
    rgb = depth_to_gray(d)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert rgb[60, 80, 0] > rgb[10, 10, 0]
    assert tuple(rgb[0, 0]) == tuple(rgb[0, 1]) != tuple(rgb[10, 10])


def test_q_colour_red_to_green():
    assert q_color(0.0) == (255, 0, 0)
    assert q_color(1.0) == (0, 255, 0)
    assert q_color(None) == q_color(float("nan"))


def test_grasp_is_drawn_at_its_jaws():
    g = Grasp(row=60, col=80, angle_rad=0.0, width_px=40, depth_m=0.66)
    img = np.asarray(draw_grasp(_depth(), g, q=1.0, label="test"))
    green = (img[..., 1] > 200) & (img[..., 0] < 60)
    cols = np.nonzero(green.any(axis=0))[0]
    rows = np.nonzero(green.any(axis=1))[0]
    assert abs(cols.min() - 60) <= 2 and abs(cols.max() - 100) <= 2  # jaws at col 80 ± 20
    assert rows.min() > 40 and rows.max() < 80


def test_vertical_grasp_angle_convention():
    g = Grasp(row=60, col=80, angle_rad=np.pi / 2, width_px=40, depth_m=0.66)
    img = np.asarray(draw_grasp(_depth(), g, q=1.0))
    green = (img[..., 1] > 200) & (img[..., 0] < 60)
    rows = np.nonzero(green.any(axis=1))[0]
    assert abs(rows.min() - 40) <= 2 and abs(rows.max() - 80) <= 2


def test_never_crashes(tmp_path):
    d = np.full((50, 60), np.nan, np.float32)
    bad = [Grasp(1e9, -1e9, 0.3, 1e12, 0.5), Grasp(np.nan, 3, 0, 10, 0.5), Grasp(-30, 500, 1.0, 20, 0.5)]
    for g in bad + [None]:
        assert draw_grasp(d, g, q=float("nan")).size == (60, 50)
    assert draw_grasp(np.zeros((0, 0)), None).size == (1, 1)
    p = save_overlay(tmp_path / "sub" / "o.png", _depth(), bad[2], 0.4, "x", scale=2.0,
                     others=[(bad[0], 0.1)])
    assert p.exists()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_any = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=60, deadline=None)
@given(_any, _any, _any, _any, st.one_of(st.none(), _any), st.floats(0.1, 3.0))
def test_property_never_raises(row, col, angle, width, q, scale):
    img = draw_grasp(_depth(), Grasp(row, col, angle, width, 0.6), q=q, label="p", scale=scale)
    assert img.size[0] >= 1
