"""Domain randomisation for `datagen --randomize`: what is drawn per image, from which ranges.

Frames: the table frame has its origin on the table top at the table centre, z up, x/y as the robot
base. `T_table_camera` maps camera points (OpenCV: x = +col, y = +row, z forward) to table points:
p_table = R @ p_camera + t. A plan holds every drawn number; `to_json` is what the dataset records.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from benchbot.core.errors import BenchbotError
from benchbot.sim.sensors import SENSORS, sensor

DISTRACTOR_SHAPES = ("box", "cylinder", "plate")


@dataclass(frozen=True)
class Randomization:
    """Ranges of the drawn parameters (uniform unless stated). Defaults: `benchbot datagen --randomize`."""

    sensors: tuple[str, ...] = tuple(SENSORS)
    tilt_deg: tuple[float, float] = (0.0, 20.0)  # optical axis vs the table normal
    height_m: tuple[float, float] = (0.5, 0.9)  # camera centre above the table top
    look_radius_m: float = 0.05  # the optical axis meets the table within this radius of its centre
    objects: tuple[int, int] = (1, 5)  # objects dropped per image (drawn from the object list)
    clutter_radius_m: tuple[float, float] = (0.05, 0.15)  # drop disc radius for 1 and for the most objects
    distractors: tuple[int, int] = (0, 3)  # static boxes / cylinders / plates around the workspace
    distractor_ring_m: tuple[float, float] = (0.20, 0.40)
    fingers_prob: float = 0.5  # the 2F-85 fingers partly in the frame
    finger_height_m: tuple[float, float] = (0.08, 0.25)  # TCP above the table when in view
    finger_pitch_deg: tuple[float, float] = (0.0, 60.0)  # approach below horizontal when in view

    def __post_init__(self) -> None:
        for s in self.sensors:
            sensor(s)
        ok = (self.sensors and 0 <= self.tilt_deg[0] <= self.tilt_deg[1] < 60
              and 0.2 <= self.height_m[0] <= self.height_m[1]
              and 1 <= self.objects[0] <= self.objects[1] <= 8 and 0 <= self.distractors[0] <= self.distractors[1] <= 8
              and 0 <= self.fingers_prob <= 1)
        if not ok:
            raise BenchbotError(f"invalid randomisation ranges: {self.to_json()}",
                                "use increasing (low, high) pairs: tilt 0–60°, height ≥ 0.2 m, 1–8 objects")

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class CameraPlan:
    sensor: str
    height_m: float
    tilt_deg: float
    azimuth_deg: float  # direction the camera leans towards, in the table's x/y plane
    roll_deg: float  # in-plane rotation about the optical axis
    look_at_xy_m: tuple[float, float]

    def t_table_camera(self) -> np.ndarray:
        return camera_pose_table(self.height_m, math.radians(self.tilt_deg), math.radians(self.azimuth_deg),
                                 math.radians(self.roll_deg), self.look_at_xy_m)


@dataclass
class DistractorPlan:
    shape: str
    size_m: tuple[float, ...]  # MuJoCo half sizes (box / plate: x, y, z; cylinder: radius, half height)
    xy_m: tuple[float, float]
    yaw_rad: float


@dataclass
class FingerPlan:
    border: str  # image side the gripper enters from
    along: float  # position along that side (0–1)
    inset: float  # how far into the image the TCP projects (fraction of the image)
    tcp_height_m: float
    pitch_deg: float  # approach below horizontal (fingers pointing into the image)
    roll_deg: float  # jaw axis turned from horizontal about the approach
    opening_m: float


@dataclass
class ScenePlan:
    seed: int
    camera: CameraPlan
    object_ids: list[str]
    drop_radius_m: float
    distractors: list[DistractorPlan] = field(default_factory=list)
    fingers: FingerPlan | None = None

    def to_json(self) -> dict:
        return asdict(self)


def camera_pose_table(height_m: float, tilt_rad: float, azimuth_rad: float, roll_rad: float,
                      look_at_xy_m: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """4×4 T_table_camera of a camera `height_m` above the table whose optical axis meets the table at
    `look_at_xy_m`, tilted by `tilt_rad` from straight down, leaning towards `azimuth_rad`, rolled by
    `roll_rad` about its axis."""
    u = np.array([math.cos(azimuth_rad), math.sin(azimuth_rad), 0.0])  # horizontal lean direction
    v = np.array([-u[1], u[0], 0.0])
    axis = math.sin(tilt_rad) * u - math.cos(tilt_rad) * np.array([0.0, 0.0, 1.0])  # camera z (forward)
    e1, e2 = v, np.cross(axis, v)
    x = math.cos(roll_rad) * e1 + math.sin(roll_rad) * e2
    y = np.cross(axis, x)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, axis], axis=1)
    dist = height_m / math.cos(tilt_rad)
    t[:3, 3] = np.array([look_at_xy_m[0], look_at_xy_m[1], 0.0]) - dist * axis
    return t


def plan_scene(seed: int, rnd: Randomization, object_ids: list[str] | tuple[str, ...]) -> ScenePlan:
    """Draw every randomised parameter of one image from its seed (same seed → same plan)."""
    rng = np.random.default_rng([seed, 104729])
    u = lambda lo_hi: float(rng.uniform(*lo_hi))  # noqa: E731
    name = rnd.sensors[int(rng.integers(len(rnd.sensors)))]
    r, a = rnd.look_radius_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    cam = CameraPlan(name, u(rnd.height_m), u(rnd.tilt_deg), u((0.0, 360.0)), u((0.0, 360.0)),
                     (float(r * math.cos(a)), float(r * math.sin(a))))
    n = int(rng.integers(rnd.objects[0], rnd.objects[1] + 1))
    ids = [object_ids[int(k)] for k in rng.choice(len(object_ids), size=n, replace=n > len(object_ids))]
    lo, hi = rnd.clutter_radius_m
    radius = lo + (hi - lo) * (n - 1) / max(rnd.objects[1] - 1, 1)
    distractors = [_distractor(rng, rnd) for _ in range(int(rng.integers(rnd.distractors[0], rnd.distractors[1] + 1)))]
    fingers = None
    if rng.random() < rnd.fingers_prob:
        fingers = FingerPlan(("top", "bottom", "left", "right")[int(rng.integers(4))], u((0.2, 0.8)), u((0.0, 0.15)),
                             u(rnd.finger_height_m), u(rnd.finger_pitch_deg), u((-30.0, 30.0)), u((0.0, 0.085)))
    return ScenePlan(seed, cam, ids, radius, distractors, fingers)


def _distractor(rng: np.random.Generator, rnd: Randomization) -> DistractorPlan:
    shape = DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))]
    size: tuple[float, ...]
    if shape == "box":
        size = (rng.uniform(0.01, 0.06), rng.uniform(0.01, 0.06), rng.uniform(0.01, 0.08))
    elif shape == "cylinder":
        size = (rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.06))
    else:  # a tray, a book, tape: wide and low
        size = (rng.uniform(0.04, 0.12), rng.uniform(0.04, 0.12), rng.uniform(0.002, 0.008))
    reach = float(np.hypot(size[0], size[1] if shape != "cylinder" else size[0]))
    r = rng.uniform(*rnd.distractor_ring_m) + reach
    a = rng.uniform(0, 2 * math.pi)
    return DistractorPlan(shape, tuple(float(s) for s in size), (float(r * math.cos(a)), float(r * math.sin(a))),
                          float(rng.uniform(-math.pi, math.pi)))
