"""The emulator's gripper behaviour over simulated time, without any network."""
import pytest

from benchbot.devices.grippers.robotiq_emulator import GripperModel, ModelParams
from benchbot.devices.grippers.robotiq_registers import Command

P = ModelParams()
SPAN = P.closed_stop - P.open_stop  # register units between the finger stops
CLOSE_FULL = Command(act=True, gto=True, position=255, speed=255, force=255)


def active_model(object_width_m=None) -> GripperModel:
    m = GripperModel(P, object_width_m)
    m.command(Command(act=True), 0.0)
    m.advance(P.activation_s + 0.01)
    assert m.status().sta == 3
    return m


def test_activation_progresses_reset_activating_active():
    m = GripperModel(P)
    assert m.status().sta == 0 and not m.status().act
    m.command(Command(act=True), 1.0)
    assert m.status().sta == 1 and m.status().act
    m.advance(1.0 + P.activation_s * 0.5)
    assert m.status().sta == 1
    m.advance(1.0 + P.activation_s + 1e-6)
    st = m.status()
    assert st.sta == 3 and st.fault == 0 and st.position == 0


def test_full_speed_close_moves_at_150_mm_per_s():
    m = active_model()
    t0 = m.t
    m.command(CLOSE_FULL, t0)
    m.advance(t0 + 0.2)  # 0.2 s × 150 mm/s = 30 mm of 85 mm
    assert m.status().position == pytest.approx(30 / 85 * SPAN, abs=1)
    assert m.status().obj == 0 and m.status().current > 0
    m.advance(t0 + 0.085 / 0.150 + 0.001)
    st = m.status()
    assert st.position == P.closed_stop and st.obj == 3 and st.current == 0


def test_minimum_speed_is_20_mm_per_s():
    m = active_model()
    t0 = m.t
    m.command(Command(act=True, gto=True, position=255, speed=0, force=0), t0)
    m.advance(t0 + 1.0)  # 20 mm of 85 mm
    assert m.status().position == pytest.approx(20 / 85 * SPAN, abs=1)


def test_contact_stops_at_object_width_with_gobj_2():
    m = active_model(object_width_m=0.05)
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    st = m.status()
    assert st.obj == 2 and st.position == round(P.closed_stop - 50 / 85 * SPAN)
    assert st.current > 0  # holding current
    weak = active_model(object_width_m=0.05)
    weak.command(Command(act=True, gto=True, position=255, speed=255, force=0), weak.t)
    weak.advance(weak.t + 2.0)
    assert weak.status().current < st.current  # holding current grows with force


def test_opening_past_an_object_is_not_a_contact():
    m = active_model(object_width_m=0.05)
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    m.command(Command(act=True, gto=True, position=0, speed=255, force=255), m.t)
    m.advance(m.t + 2.0)
    assert m.status().obj == 3 and m.status().position == 0


def test_dropped_object_lets_fingers_close_to_gobj_3():
    m = active_model(object_width_m=0.05)
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    m.set_object_width(None, m.t)
    assert m.status().obj == 0  # moving again
    m.advance(m.t + 2.0)
    assert m.status().obj == 3 and m.status().position == P.closed_stop


def test_go_without_activation_is_fault_07_and_reset_clears_it():
    m = GripperModel(P)
    m.command(Command(act=False, gto=True, position=255), 0.0)
    assert m.status().fault == 0x07
    m.command(Command(act=False), 0.1)
    assert m.status().fault == 0


def test_go_during_activation_is_delayed_fault_05_then_executes():
    m = GripperModel(P)
    m.command(Command(act=True), 0.0)
    m.command(CLOSE_FULL, 0.1)
    assert m.status().fault == 0x05 and m.status().sta == 1
    m.advance(P.activation_s + 1.0)
    st = m.status()
    assert st.fault == 0 and st.sta == 3 and st.position == P.closed_stop and st.obj == 3


def test_injected_fault_stops_motion_until_reset():
    m = active_model()
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 0.1)
    m.inject_fault(0x0E, m.t)
    pos = m.status().position
    m.command(CLOSE_FULL, m.t + 0.1)  # ignored while a major fault is active
    m.advance(m.t + 1.0)
    assert m.status().fault == 0x0E and m.status().position == pos
    m.command(Command(act=False), m.t)
    assert m.status().fault == 0 and m.status().sta == 0


def test_automatic_release_reports_0B_then_0F():
    m = active_model()
    m.command(Command(act=True, atr=True, ard=False), m.t)
    assert m.status().fault == 0x0B
    m.advance(m.t + 0.085 / P.release_speed_mps + 0.1)
    st = m.status()
    assert st.fault == 0x0F and st.position == P.closed_stop


def test_regrip_on_a_held_object_stays_on_it():
    m = active_model(object_width_m=0.05)
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    m.command(Command(act=True, gto=True, position=255, speed=128, force=255), m.t + 0.1)
    m.advance(m.t + 2.0)
    assert m.status().obj == 2 and m.status().position == round(P.closed_stop - 50 / 85 * SPAN)


def test_object_wider_than_the_opening_is_touched_at_once():
    m = active_model(object_width_m=0.10)  # wider than the 85 mm stroke
    m.command(CLOSE_FULL, m.t)
    assert m.status().obj == 2 and m.status().position == 0


def test_closing_empty_stops_at_the_real_closed_stop_not_255():
    """A real 2F-85 closed on nothing reads gPO ≈ 0xE3–0xE6 with gOBJ=3 while gPR echoes 255."""
    assert 0xE3 <= P.closed_stop <= 0xE6
    m = active_model()
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    st = m.status()
    assert (st.position, st.obj, st.position_request) == (P.closed_stop, 3, 255)


def test_stops_are_configurable_and_validated():
    from benchbot.core.errors import BenchbotError

    params = ModelParams(open_stop=4, closed_stop=0xE6)
    m = GripperModel(params)
    m.command(Command(act=True), 0.0)
    m.advance(params.activation_s + 0.01)
    assert m.status().position == 4  # opens to its open stop on activation
    m.command(Command(act=True, gto=True, position=0, speed=255, force=0), m.t)
    assert m.status().position == 4 and m.status().obj == 3
    m.command(CLOSE_FULL, m.t)
    m.advance(m.t + 2.0)
    assert m.status().position == 0xE6
    with pytest.raises(BenchbotError, match="open_stop"):
        ModelParams(open_stop=0xE4, closed_stop=0x10)
