"""Defaults of the robot and tool that configs and drivers share (plain constants, no imports):
the hardware YAML's defaults come from here and the UR5 kinematics read them from here."""

# Home: tool straight down, TCP at ≈ (0.30, −0.39, 0.33) m, beside the workspace (+x, −y) so that an
# overhead camera at (0.45, 0) sees the table, 0.49 m from the base axis, wrists ≈ 0.58 m high.
UR5_HOME_JOINTS_RAD = (2.0071, -1.5708, 1.3963, -1.3963, -1.5708, -2.7053)  # (115, −90, 80, −80, −90, −155)°
# Robotiq 2F-85 on the UR flange (with its coupling): fingertip centre ~174 mm along the flange z.
ROBOTIQ_2F85_TCP_OFFSET = (0.0, 0.0, 0.174, 0.0, 0.0, 0.0)

# The camera kinds a hardware config may name; `benchbot.devices.cameras.CAMERA_KINDS` maps each
# to its factory (a test keeps the two in step; `register_camera_kind` adds to both).
BUILTIN_CAMERA_KINDS = frozenset({"replay", "kinect2", "k4a", "k4a-playback", "mujoco"})
CAMERA_KIND_NAMES: set[str] = set(BUILTIN_CAMERA_KINDS)
