"""The run's log file: results/<run>/run.log with device commands, replies, timings and warnings;
bounded; appended on resume; written nowhere else (not the cwd); never for a run that does not
go ahead. And -v/-q on the command line choose what reaches stderr."""
from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from benchbot.core.errors import DeviceError
from benchbot.core.logs import COMMAND_LOG_LEN, ROOT, RUN_LOG_NAME, CommandLog, RunLog, is_run_log
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell


def _sim_args(tmp: Path, proto: Path, *extra: str) -> list[str]:
    return ["run", "--sim", "-p", str(proto), "--db", str(tmp / "r.db"), "--results", str(tmp / "res"),
            "--no-robustness", *extra]


def _only_log(tmp: Path) -> Path:
    logs = [p for p in tmp.rglob("*") if p.is_file() and ".log" in p.name]
    assert len(logs) == 1, logs
    return logs[0]


def test_sim_run_logs_device_commands_in_its_folder_and_nowhere_else(tmp_path, small_protocol, run_cli,
                                                                     monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, _, err = run_cli(_sim_args(tmp_path, small_protocol, "--max-trials", "2"))
    assert code == 0, err
    log = _only_log(tmp_path)
    assert log.name == RUN_LOG_NAME and log.parent.parent == tmp_path / "res"
    assert is_run_log(log.relative_to(tmp_path / "res"))
    text = log.read_text()
    run_id = log.parent.name
    assert f"new run {run_id}: backend replay" in text
    assert "benchbot.devices.safety: {'cmd': 'move_linear'" in text  # the command the gate saw
    assert "benchbot.devices.arms.dryrun: {'cmd': 'move_linear'" in text  # the command the arm got
    assert "benchbot.devices.grippers.robotiq: write Command(act=True, gto=True" in text  # Modbus writes
    assert "gripper at 127.0.0.1" in text and "activated in" in text  # ... and the emulator's replies
    assert text.count("attempt 1: final; timings {'place'") == 2
    assert "DEBUG" not in err and "INFO" not in err  # the console shows warnings only by default
    assert list(cwd.iterdir()) == []


def test_resume_appends_to_the_run_log(tmp_path, small_protocol, run_cli):
    assert run_cli(_sim_args(tmp_path, small_protocol, "--max-trials", "1"))[0] == 0
    log = _only_log(tmp_path)
    first = log.read_text()
    assert run_cli(_sim_args(tmp_path, small_protocol, "--max-trials", "1"))[0] == 0
    both = log.read_text()
    assert both.startswith(first) and f"resuming run {log.parent.name}" in both[len(first):]
    assert _only_log(tmp_path) == log


def test_a_run_that_does_not_go_ahead_writes_no_log(tmp_path, small_protocol):
    def broken(*a, **kw):  # the devices connect (and log), then one fails: the run does not go ahead
        wc = build_workcell(*a, **kw)
        real_opener = wc.opener

        def opener(cell) -> None:
            real_opener(cell)
            raise DeviceError("camera unreachable", "plug it in")
        wc.opener = opener
        return wc

    cfg = RunConfig(protocol_path=small_protocol, db_path=tmp_path / "r.db", results_dir=tmp_path / "res",
                    backend="replay", evaluator="none")
    with pytest.raises(DeviceError):
        Runner(cfg, workcell_factory=broken).run()
    assert not (tmp_path / "res").exists()  # the claimed run folder was released: nothing written
    assert not any(isinstance(h, RunLog) for h in logging.getLogger(ROOT).handlers)


def test_the_run_log_is_bounded(tmp_path):
    logger = logging.getLogger(f"{ROOT}.test_bounded")
    with RunLog(max_bytes=20_000, backups=2) as run_log:
        for i in range(300):  # held before the folder is known: bounded too
            logger.debug("held %d", i)
        run_log.open(tmp_path)
        for i in range(5000):  # ~400 kB of lines
            logger.debug("line %05d %s", i, "x" * 60)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [RUN_LOG_NAME, f"{RUN_LOG_NAME}.1", f"{RUN_LOG_NAME}.2"]
    assert all((tmp_path / n).stat().st_size <= 20_000 for n in names)
    assert "line 04999" in (tmp_path / RUN_LOG_NAME).read_text()  # the newest lines are kept
    assert not any(isinstance(h, RunLog) for h in logging.getLogger(ROOT).handlers)  # detached


def test_records_held_before_the_folder_is_known_are_bounded():
    with RunLog() as run_log:
        for i in range(run_log.pending.maxlen + 100):
            logging.getLogger(ROOT).debug("%d", i)
        assert len(run_log.pending) == run_log.pending.maxlen


class _FullDisk:
    def write(self, _text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = close = lambda self: self.write("")


def test_a_full_disk_drops_log_lines_quietly(tmp_path, capsys):
    with RunLog() as run_log:
        run_log.open(tmp_path)
        run_log.file.stream = _FullDisk()  # every write, flush and the close now fail
        logging.getLogger(ROOT).warning("lost")
    assert "Traceback" not in capsys.readouterr().err


def test_device_command_logs_keep_the_latest_and_send_all_to_the_logger(caplog):
    log = CommandLog("benchbot.devices.test")
    with caplog.at_level(logging.DEBUG, logger="benchbot.devices.test"):
        for i in range(COMMAND_LOG_LEN + 5):
            log.append({"cmd": "move_linear", "i": i})
    assert len(log) == COMMAND_LOG_LEN and log[0]["i"] == 5 and log[-1]["i"] == COMMAND_LOG_LEN + 4
    assert len(caplog.records) == COMMAND_LOG_LEN + 5


def test_verbose_and_quiet_choose_what_reaches_stderr(tmp_path, small_protocol, run_cli):
    args = _sim_args(tmp_path, small_protocol, "--max-trials", "1")
    code, _, err = run_cli(["-v", *args])
    assert code == 0 and "INFO benchbot.harness.attempt: trial" in err and "DEBUG" not in err
    code, _, err = run_cli(["-vv", *args])
    assert code == 0 and "DEBUG benchbot.devices.arms.dryrun: {'cmd': 'move_linear'" in err
    assert not any(isinstance(h, logging.Handler) and type(h).__name__ == "ConsoleHandler"
                   for h in logging.getLogger(ROOT).handlers)  # detached after each command


def test_quiet_leaves_errors_only(tmp_path, small_protocol, run_cli, monkeypatch):
    import benchbot.detectors as detectors

    real = detectors.check_methods

    def check(*a, **kw):
        logging.getLogger("benchbot.detectors").warning("a warning")
        logging.getLogger("benchbot.detectors").error("an error")
        return real(*a, **kw)

    monkeypatch.setattr(detectors, "check_methods", check)
    code, _, err = run_cli(["validate", str(small_protocol)])
    assert code == 0 and "WARNING benchbot.detectors: a warning" in err and "ERROR benchbot.detectors: an error" in err
    code, _, err = run_cli(["-q", "validate", str(small_protocol)])
    assert code == 0 and "a warning" not in err and "ERROR benchbot.detectors: an error" in err


def test_a_follower_of_a_full_command_log_sees_every_new_entry():
    log, seen, got = CommandLog("benchbot.devices.test", maxlen=5), 0, []
    for i in range(23):
        log.append(i)
        if i % 3 == 0:
            new, seen = log.since(seen)
            got += new
    new, seen = log.since(seen)
    assert got + new == list(range(23)) and seen == 23 and log.since(seen) == ([], 23)
