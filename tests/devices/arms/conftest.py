"""An emulated UR controller on a free loopback address (ur_rtde's ports are fixed)."""
from __future__ import annotations

import random
import socket

import pytest

from benchbot.core.errors import BenchbotError

PORTS = (30004, 29999, 30003)


def _free_loopback() -> str | None:
    rng = random.Random()
    for _ in range(20):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
        taken = False
        for port in PORTS:
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return host
    return None


@pytest.fixture
def free_loopback() -> str:
    host = _free_loopback()
    if host is None:
        pytest.skip("no loopback address with free ports 30004/29999/30003")
    return host


@pytest.fixture
def emulator_factory():
    pytest.importorskip("rtde_control", reason="ur-rtde is not installed (pip install 'benchbot[ur]')")
    from benchbot.devices.arms.rtde_emulator_process import start_rtde_emulator

    started = []

    def start(**options):
        host = _free_loopback()
        if host is None:
            pytest.skip("no loopback address with free ports 30004/29999/30003")
        try:
            emu = start_rtde_emulator(host, **options)
        except BenchbotError as e:
            pytest.skip(f"RTDE emulator could not bind {host}: {e.one_line()}")
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
