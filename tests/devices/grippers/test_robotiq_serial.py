"""Serial RTU (115200 8N1) between the client and the emulator through a socat pty pair."""
import os
import shutil
import subprocess
import time

import pytest

from benchbot.devices.grippers.robotiq import RobotiqGripper
from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper
from benchbot.devices.grippers.robotiq_emulator import ModelParams, start_emulator


@pytest.fixture
def pty_pair(tmp_path):
    if shutil.which("socat") is None:
        pytest.skip("socat not installed (apt-get install -y socat)")
    pytest.importorskip("serial", reason="pyserial not installed (pip install 'benchbot[robotiq]')")
    a, b = tmp_path / "gripper", tmp_path / "host"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(250):
            if a.exists() and b.exists():
                break
            time.sleep(0.02)
        else:
            pytest.skip("socat did not create the pty pair")
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(5)


def test_serial_rtu_cycle(pty_pair):
    emu_port, host_port = pty_pair
    params = ModelParams(open_stop=3, closed_stop=0xE5)
    with start_emulator(framing="serial", serial_port=emu_port, time_scale=1000.0, params=params) as emu:
        assert emu.address == emu_port and os.path.exists(emu_port)
        with RobotiqGripper(dict(transport="serial", serial_port=host_port, timeout_s=0.5, poll_s=0.0)) as g:
            cal = calibrate_gripper(g)  # over RS-485 framing, as on a real USB adapter
            assert (cal.open_position, cal.closed_position) == (3, 0xE5) and "serial" in cal.gripper
            g.use_calibration(cal.open_position, cal.closed_position)
            emu.set_object_width(0.03)
            assert g.open(0.085).position_m == pytest.approx(0.085)
            st = g.grip(force=0.3, speed=0.3)
            assert st.object_detected and st.position_m == pytest.approx(0.03, abs=0.0004)
