"""Commands for the real cell: doctor, calibrate, calibrate-gripper, check-calibration, record and
the `emulate` group (emulators of the arm and gripper protocols)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer
from rich.markup import escape
from rich.table import Table

from benchbot.cli.common import HardwareOpt, check_counts, err, out, say
from benchbot.core.errors import BenchbotError, check_loopback, check_number

if TYPE_CHECKING:
    from benchbot.devices.grippers.robotiq_emulator import Framing


def doctor(hardware: Path = HardwareOpt) -> None:
    """Check every configured device (driver, reachable, gripper activated, camera streaming,
    calibration age) and print a table; exit 1 if any check fails."""
    from benchbot.config.hardware import load_hardware
    from benchbot.harness.doctor import all_ok, run_checks

    results = run_checks(load_hardware(hardware))
    table = Table("check", "status", "detail", "fix")
    for r in results:
        status = "[green]ok[/]" if r.ok and not r.warning else ("[yellow]warn[/]" if r.ok else "[red]FAIL[/]")
        table.add_row(escape(r.name), status, escape(r.detail), escape(r.fix))
    out.print(table)
    if not all_ok(results):
        raise typer.Exit(1)


def calibrate(hardware: Path | None = typer.Option(None, "--hardware", help="Hardware YAML."),
              out_path: Path | None = typer.Option(None, "--out", help="Calibration YAML to write."),
              poses: int = typer.Option(12, "--poses", help="Number of arm poses."),
              center: str | None = typer.Option(None, "--center", help="Board centre x,y,z in the base frame (m)."),
              tilt: float = typer.Option(35.0, "--tilt", help="Board tilt of the calibration poses (degrees)."),
              print_board: Path | None = typer.Option(None, "--print-board", help="Write a printable board PNG."),
              dpi: int = typer.Option(300, "--dpi"),
              ) -> None:
    """Camera-to-robot-base (eye-to-hand) calibration with a ChArUco board held by the gripper.

    Examples: `benchbot calibrate --print-board board.png`, then `benchbot calibrate --hardware hw.yaml`
    """
    from benchbot.calibration.board import BoardSpec, save_board_image
    from benchbot.calibration.workflows import calibrate_hardware
    from benchbot.harness.detect import check_output_file

    if print_board is not None:
        check_counts(dpi=(dpi, 72, 1200))
        check_output_file(print_board, ".png", "--print-board board.png")
        path = save_board_image(print_board, BoardSpec(), dpi)
        say(f"board written to {path} (print at 100 % scale, measure a square)")
        return
    if hardware is None:
        raise BenchbotError("calibrate needs --hardware FILE (or --print-board PNG)", "pass --hardware hw.yaml")
    c = _xyz(center) if center else None
    cal, res, path = calibrate_hardware(hardware, out_path, n_poses=poses, tilt_deg=tilt, center_m=c)
    say(f"calibration written to {path}: residual {res.residual_mm:.2f} mm / {res.residual_deg:.3f}° RMS "
         f"over {cal.n_poses} poses; rejected poses: {res.rejected or 'none'}")


def _xyz(text: str) -> list[float]:
    """'x,y,z' in metres → three finite floats, or a one-line error."""
    import math

    try:
        c = [float(v) for v in text.split(",")]
    except ValueError:
        c = []
    if len(c) != 3 or not all(math.isfinite(v) for v in c):
        raise BenchbotError(f"--center '{text}' is not x,y,z in metres", "e.g. --center 0.45,0,0.15 (base frame)")
    return c


def calibrate_gripper_cmd(hardware: Path = HardwareOpt,
                          out_path: Path | None = typer.Option(None, "--out",
                                                               help="Gripper calibration YAML to write."),
                          ) -> None:
    """Measure where the 2F-85's fingers stop: close fully and open fully with EMPTY jaws, read gPO.

    Writes --out, else gripper.calibration, else gripper_calibration.yaml beside the hardware YAML.
    Example: `benchbot calibrate-gripper --hardware hw.yaml`
    """
    from benchbot.devices.grippers.robotiq_calibration import calibrate_gripper_hardware

    err.print("the gripper closes and opens fully: keep the jaws empty and fingers clear", markup=False)
    cal, path = calibrate_gripper_hardware(hardware, out_path)
    out.print(f"gripper calibration written to {path}: open gPO {cal.open_position}, closed gPO "
              f"{cal.closed_position} (0x{cal.closed_position:02X}); set gripper.calibration to it", markup=False)


def check_calibration_cmd(hardware: Path = HardwareOpt,
                          tolerance_mm: float = typer.Option(5.0, "--tolerance-mm")) -> None:
    """Touch board corners with the TCP and compare with where the calibration predicts them.

    The arm hovers above each predicted corner, then switches to freedrive: guide the TCP onto the
    corner by hand and confirm (no pendant jogging needed)."""
    from benchbot.calibration.workflows import check_hardware
    from benchbot.harness.operator import ConsoleOperator

    report_ = check_hardware(hardware, ConsoleOperator(err))
    table = Table("point", "error mm", "dx mm", "dy mm", "dz mm")
    for r in report_.rows():
        table.add_row(*(str(r[k]) for k in ("point", "error_mm", "dx_mm", "dy_mm", "dz_mm")))
    out.print(table)
    out.print(f"max error {report_.max_mm:.2f} mm (tolerance {tolerance_mm} mm)")
    if not report_.ok(tolerance_mm):
        raise typer.Exit(1)


def record(hardware: Path = HardwareOpt,
           out_dir: Path = typer.Option(..., "--out", help="Recording folder to create."),
           frames: int = typer.Option(10, "--frames", help="Number of frames."),
           interval: float = typer.Option(0.0, "--interval", help="Seconds between frames."),
           fmt: str = typer.Option("png", "--format", help="png (16-bit mm) | npy (float32 m)."),
           notes: str = typer.Option("", "--notes")) -> None:
    """Capture frames from the configured camera into a recording folder (input of `run --sim --recording`)."""
    from benchbot.harness.record import record_from_hardware

    check_counts(frames=(frames, 1, 100_000))
    check_number("--interval", interval, 0.0, 3600.0, fix="use seconds between 0 and 3600")
    if fmt not in ("png", "npy"):
        raise BenchbotError(f"unknown recording format '{fmt}'", "use png (16-bit mm) or npy (float32 m)")
    path = record_from_hardware(hardware, out_dir, frames, interval, fmt, notes)
    say(f"recorded {frames} frame(s) to {path}")


def emulate_gripper(host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to serve on."),
                    port: int = typer.Option(5020, "--port", help="0 picks a free port."),
                    framing: str = typer.Option("tcp", "--framing", help="tcp | rtu-tcp | serial."),
                    serial_port: str | None = typer.Option(None, "--serial-port"),
                    baudrate: int = typer.Option(115200, "--baudrate"),
                    time_scale: float = typer.Option(1.0, "--time-scale", help=">1 runs the gripper faster."),
                    object_width_m: float | None = typer.Option(None, "--object-width-m",
                                                                   help="Width of an object between the jaws."),
                    ) -> None:
    """Serve an emulated Robotiq 2F-85 over Modbus (unit 9) until Ctrl-C.

    Example: `benchbot emulate gripper --port 5020 --object-width-m 0.05`
    """
    from benchbot.devices.grippers.robotiq_emulator import serve_emulator

    check_counts(port=(port, 0, 65535), baudrate=(baudrate, 1, 10_000_000))
    check_number("--time-scale", time_scale, 1e-3, 1e3)
    if framing != "serial":
        check_loopback("--host", host)
    if object_width_m is not None:
        check_number("--object-width-m", object_width_m, 0.0, 0.2, fix="use the object's width in metres, e.g. 0.05")
    serve_emulator(host, port, cast("Framing", framing), time_scale,  # start_emulator refuses other framings
                   object_width_m, serial_port=serial_port, baudrate=baudrate,
                   on_ready=lambda h: err.print(f"emulated Robotiq 2F-85 on {h.address} ({framing}, unit "
                                                f"{h.device_id}) — Ctrl-C to stop"))


def emulate_arm(host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to serve on."),
                time_scale: float = typer.Option(1.0, "--time-scale", help=">1 moves the arm faster."),
                table_z_m: float | None = typer.Option(None, "--table-z-m",
                                                       help="Table height (protective stop below).")
                ) -> None:
    """Serve a UR5 controller emulator (RTDE 30004, dashboard 29999, script 30003) until Ctrl-C.

    Example: `benchbot emulate arm --host 127.0.0.2`
    """
    from benchbot.devices.arms.rtde_emulator_process import run_rtde_emulator

    check_number("--time-scale", time_scale, 1e-3, 1e3)
    check_loopback("--host", host)
    if table_z_m is not None:
        check_number("--table-z-m", table_z_m, -2.0, 2.0, fix="use the table height in metres in the base frame")
    run_rtde_emulator(host, echo=lambda m: err.print(m, markup=False), time_scale=time_scale, table_z_m=table_z_m)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add doctor, calibrate, calibrate-gripper, check-calibration, record and `emulate` to the command line."""
    emulate_app = typer.Typer(help="Protocol-level emulators other software can connect to.", no_args_is_help=True)
    app.add_typer(emulate_app, name="emulate")
    app.command()(doctor)
    app.command()(calibrate)
    app.command("calibrate-gripper")(calibrate_gripper_cmd)
    app.command("check-calibration")(check_calibration_cmd)
    app.command()(record)
    emulate_app.command("gripper")(emulate_gripper)
    emulate_app.command("arm")(emulate_arm)
