"""The workcell's lifecycle: `with workcell:` takes the run lock, then connects its devices; leaving
closes them and releases the lock (one ExitStack), also when connecting fails half-way."""
from __future__ import annotations

import pytest

from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.interfaces import Device
from benchbot.devices.safety import SafetyLimits
from benchbot.harness.lock import RunLock
from benchbot.harness.workcell import Workcell


class Dev(Device):
    def __init__(self, log, name, fail=False):
        self.log, self.name, self.fail, self.up = log, name, fail, False

    def connect(self):
        self.log.append(f"connect {self.name}")
        if self.fail:
            raise DeviceError(f"{self.name} unreachable", "check it")
        self.up = True

    def close(self):
        self.log.append(f"close {self.name}")
        self.up = False

    @property
    def is_connected(self):
        return self.up


def _cell(tmp_path, log, fail_second=False):
    def opener(wc):
        assert RunLock(tmp_path / "r.db").path.exists()
        log.append("locked" if wc.lock.held else "unlocked")
        wc.attach(Dev(log, "camera"))
        wc.attach(Dev(log, "gripper", fail=fail_second))
        wc.attach(Dev(log, "arm"))

    return Workcell("test", SafetyLimits(), opener, lock=RunLock(tmp_path / "r.db"))


def test_lock_then_connect_then_close_in_reverse_then_unlock(tmp_path):
    log: list[str] = []
    wc = _cell(tmp_path, log)
    with wc:
        assert log == ["locked", "connect camera", "connect gripper", "connect arm"]
        with pytest.raises(BenchbotError, match="in use"):  # another run on this database is refused
            RunLock(tmp_path / "r.db").acquire()
    assert log[4:] == ["close arm", "close gripper", "close camera"]
    assert not wc.lock.held
    RunLock(tmp_path / "r.db").acquire().release()  # free again


def test_a_failed_connect_closes_what_was_opened_and_releases_the_lock(tmp_path):
    log: list[str] = []
    wc = _cell(tmp_path, log, fail_second=True)
    with pytest.raises(DeviceError, match="gripper unreachable"):
        with wc:
            pass
    assert log == ["locked", "connect camera", "connect gripper", "close gripper", "close camera"]
    assert not wc.lock.held


def test_the_runners_lock_is_reentrant_for_its_workcell(tmp_path):
    lock = RunLock(tmp_path / "r.db").acquire()
    wc = Workcell("test", SafetyLimits(), lambda wc: None, lock=lock)
    with wc:
        assert lock.held
    assert lock.held  # the runner still holds it until its own exit
    lock.release()
    assert not lock.held


def test_a_part_used_before_the_cell_connects_it_is_named():
    wc = Workcell("replay", SafetyLimits(), lambda wc: None)  # nothing attached yet
    with pytest.raises(BenchbotError, match="the workcell has no arm"):
        wc.safe_state()
    with pytest.raises(BenchbotError, match="the workcell has no arm"):
        wc.recover()
