"""Keyframe strips: a row of labelled RGB frames of one grasp, saved as PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def save_strip(frames: list[tuple[str, np.ndarray]], path: str | Path, max_frames: int = 7) -> Path:
    """Save up to `max_frames` evenly chosen frames side by side with their labels."""
    from PIL import Image, ImageDraw

    if len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in idx]
    h, w = frames[0][1].shape[:2]
    strip = Image.new("RGB", (w * len(frames), h), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for i, (label, img) in enumerate(frames):
        strip.paste(Image.fromarray(img), (i * w, 0))
        draw.rectangle([i * w, 0, i * w + 8 + 7 * len(label), 18], fill=(0, 0, 0))
        draw.text((i * w + 4, 3), label, fill=(255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path)
    return path


def grasp_figure(path: str | Path, object_id: str = "mustard-bottle", seed: int = 2019) -> dict:
    """The docs picture: the noisy depth frame with the executed grasp, then keyframes of the
    physics trial (one object, one seeded placement, a depth-sampled grasp, the protocol's motion)."""
    from PIL import Image

    from benchbot.config.protocol import default_protocol_path, load_protocol
    from benchbot.core.types import Placement
    from benchbot.harness.cells.mujoco import make_physics_workcell
    from benchbot.harness.primitive import execute_grasp, grasp_in_base
    from benchbot.perception.geometry import grasp_to_camera
    from benchbot.perception.inpaint import inpaint
    from benchbot.perception.overlay import draw_grasp
    from benchbot.sim.grasps import sample_grasps

    lp = load_protocol(default_protocol_path())
    p = lp.protocol
    wc = make_physics_workcell(lp, seed=seed, record_video=True)
    try:
        wc.arm.connect()
        wc.gripper.activate()
        pl = Placement(f"figure-{object_id}", object_id, seed)
        wc.stage.place(pl)
        frame = wc.camera.capture()
        depth = inpaint(frame.depth_m)
        grasp = sample_grasps(depth, frame.intrinsics, 0.70, 1, np.random.default_rng(seed), random_share=0.0)[0]
        pose = grasp_in_base(grasp_to_camera(grasp, frame.intrinsics), wc.t_base_camera)
        ex = execute_grasp(wc.arm, wc.gripper, pose, p.motion, p.gripper.opening_m, force=p.gripper.force,
                           grip_speed=p.gripper.speed, sleep=wc.sleep)
        verdict = wc.stage.judge(pl, ex)
        frames = wc.world.log.frames
        keep = [f for f in frames if f[0] in ("placed", "grip", "hold")]
        approach = [f for f in frames if f[0] == "move"][1:2]  # end of the approach
        keep = keep[:1] + [("approach", a[1]) for a in approach] + keep[1:]
        h, w = keep[0][1].shape[:2]
        # depth picture: a window around the grasp, the sampled grasp drawn on the inpainted frame
        r0 = int(np.clip(grasp.row - 60, 0, depth.shape[0] - 120))
        c0 = int(np.clip(grasp.col - 60, 0, depth.shape[1] - 120))
        g = type(grasp)(grasp.row - r0, grasp.col - c0, grasp.angle_rad, grasp.width_px, grasp.depth_m)
        over = draw_grasp(depth[r0:r0 + 120, c0:c0 + 120], g, None, "depth + grasp", scale=h / 120)
        strip_path = save_strip(keep, Path(path).with_suffix(".strip.png"))
        strip = Image.open(strip_path)
        fig = Image.new("RGB", (over.width + strip.width, h), (255, 255, 255))
        fig.paste(over, (0, 0))
        fig.paste(strip, (over.width, 0))
        fig.save(path)
        strip_path.unlink()
        return {"path": str(path), "verdict": verdict.kind, "cause": verdict.cause, "lifted_m": ex.lifted_m}
    finally:
        wc.close()
