"""MuJoCo physics workcell and synthetic data generation.

Modules: scene (MJCF), objects (YCB meshes), physics (stepping), placement (seeded drop), world
(shared state + rendering), stage (outcome), workcell (factory), noise (Kinect-like depth noise),
trial + grasps + datagen (physics-labelled datasets), bench (timings), keyframes (pictures).
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported
