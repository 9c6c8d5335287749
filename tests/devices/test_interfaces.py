"""Every driver implements its device base class (connect/close/is_connected, `with device:`),
and each kind's factory builds it from its typed config section."""
from __future__ import annotations

import socket

import numpy as np
import pytest

from benchbot.config.hardware import ArmConfig, CameraConfig, GripperConfig
from benchbot.config.robot import BUILTIN_CAMERA_KINDS, CAMERA_KIND_NAMES, UR5_HOME_JOINTS_RAD
from benchbot.core.errors import BenchbotError, DeviceError
from benchbot.core.interfaces import Arm, Camera, Device, Gripper
from benchbot.core.types import DepthFrame, Intrinsics


def test_every_driver_implements_its_base_class():
    from benchbot.devices.arms.dryrun import DryRunArm
    from benchbot.devices.arms.mujoco import MujocoArm
    from benchbot.devices.arms.ur_rtde import URArm
    from benchbot.devices.cameras.averaging import MedianCamera
    from benchbot.devices.cameras.k4a import K4ACamera, K4APlaybackCamera
    from benchbot.devices.cameras.kinect2 import Kinect2Camera
    from benchbot.devices.cameras.mujoco import MujocoCamera
    from benchbot.devices.cameras.replay import ReplayCamera
    from benchbot.devices.grippers.mujoco import MujocoGripper
    from benchbot.devices.grippers.robotiq import RobotiqGripper
    from benchbot.devices.grippers.robotiq_emulator import EmulatedRobotiqGripper
    from benchbot.devices.safety import GatedArm

    kinds = {Arm: (DryRunArm, URArm, MujocoArm, GatedArm),
             Gripper: (RobotiqGripper, EmulatedRobotiqGripper, MujocoGripper),
             Camera: (ReplayCamera, Kinect2Camera, K4ACamera, K4APlaybackCamera, MujocoCamera, MedianCamera)}
    for base, drivers in kinds.items():
        for cls in drivers:
            assert issubclass(cls, base) and not cls.__abstractmethods__, cls  # nothing left abstract


def test_an_incomplete_driver_cannot_be_built():
    class NoStop(Arm):
        def connect(self): ...
        def close(self): ...
        is_connected = False
        def home(self): ...
        def move_linear(self, pose, speed_mps, accel_mps2): ...
        def current_pose(self): ...

    with pytest.raises(TypeError, match="stop"):
        NoStop()


def test_with_block_connects_and_always_closes():
    from benchbot.devices.arms import make_arm

    arm = make_arm(ArmConfig())  # dry-run UR5 twin with the configured home
    assert not arm.is_connected and np.allclose(arm.home_joints_rad, UR5_HOME_JOINTS_RAD)
    with pytest.raises(RuntimeError):
        with arm as a:
            assert a is arm and arm.is_connected
            raise RuntimeError("boom")
    assert not arm.is_connected


def test_arm_factory_builds_the_ur5_unconnected():
    from benchbot.devices.arms import make_arm
    from benchbot.devices.arms.ur_rtde import URArm

    arm = make_arm(ArmConfig(kind="ur5", host="10.0.0.2", payload_kg=1.2))
    assert isinstance(arm, URArm) and not arm.is_connected
    assert arm.config.host == "10.0.0.2" and arm.config.payload_kg == 1.2


def test_dry_run_gripper_brings_its_emulator_up_and_down():
    from benchbot.devices.grippers import describe_gripper, make_gripper

    gripper = make_gripper(GripperConfig())  # kind dryrun: an in-process 2F-85 emulator
    assert not gripper.is_connected and gripper.emulator is None
    with gripper:
        emu = gripper.emulator
        assert gripper.is_connected and gripper.status().activated
        assert gripper.grip().position_m == 0.0  # finger stops measured on connect
        assert "emulator (in-process, 127.0.0.1:" in describe_gripper(GripperConfig(), gripper)
        port = emu.port
    assert gripper.emulator is None and not gripper.is_connected
    with socket.socket() as s:  # the emulator's port is closed again
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_one_gripper_factory_real_config_builds_the_modbus_client():
    import benchbot.devices.grippers.robotiq as robotiq
    from benchbot.devices.grippers import make_gripper
    from benchbot.devices.grippers.robotiq import RobotiqGripper

    assert not hasattr(robotiq, "make_gripper")  # one factory: devices.grippers.make_gripper
    cfg = GripperConfig(kind="emulator", transport="tcp", host="127.0.0.1", port=5020, calibration=None)
    with pytest.raises(BenchbotError, match="no gripper calibration"):
        make_gripper(cfg)
    gripper = RobotiqGripper({"transport": "tcp", "host": "127.0.0.1", "port": 5020})  # a dict config too
    assert gripper.config.address == "127.0.0.1:5020" and not gripper.is_connected


def test_camera_kinds_known_to_the_config_are_the_factories(tmp_path):
    from benchbot.devices.cameras import CAMERA_KINDS, make_camera
    from benchbot.devices.cameras.recording import write_recording

    assert BUILTIN_CAMERA_KINDS <= set(CAMERA_KINDS) <= CAMERA_KIND_NAMES  # every factory's kind loads
    rec = write_recording(tmp_path / "r", [DepthFrame(np.full((4, 4), 0.7, np.float32),
                                                       Intrinsics(10, 10, 1.5, 1.5, 4, 4))] * 2)
    with make_camera(CameraConfig(kind="replay", recording=str(rec))) as cam:
        assert cam.is_connected and cam.capture().shape == (4, 4)
    assert not cam.is_connected
    with pytest.raises(DeviceError, match="closed"):
        cam.capture()
    with cam:  # a recording on disk reopens
        cam.capture()


def test_a_camera_opened_on_build_is_not_reopened_behind_the_callers_back():
    from benchbot.devices.cameras.base import OpenedOnBuild

    class Live(OpenedOnBuild):
        released = 0

        def capture(self):
            raise AssertionError

        def _release(self):
            self.released += 1

    cam = Live()
    with cam:
        assert cam.is_connected
    cam.close()  # twice: released once
    assert cam.released == 1 and not cam.is_connected
    with pytest.raises(DeviceError, match="was closed") as err:
        cam.connect()
    assert "build a new camera" in err.value.fix
    assert isinstance(cam, Device)
