"""`benchbot bench sim`: how fast the physics backend and the data generator run on this machine."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchbot.config.protocol import LoadedProtocol, default_protocol_path, load_protocol
from benchbot.core.types import Grasp, Placement


def _top_grasp(depth: np.ndarray, frame, rng: np.random.Generator) -> Grasp:
    """A stand-in detector for timing: the first antipodal sample on the object."""
    from benchbot.sim.grasps import sample_grasps

    gs = sample_grasps(depth, frame.intrinsics, frame.meta["table_distance_m"], 1, rng, random_share=0.0)
    if gs:
        return gs[0]
    return Grasp(frame.intrinsics.cy, frame.intrinsics.cx, 0.0, 50.0, frame.meta["table_distance_m"] - 0.02)


def physics_trials(lp: LoadedProtocol, n_trials: int, seed: int = 0) -> dict:
    """Run `n_trials` benchmark trials (objects in protocol order) through the harness primitive:
    place → capture → inpaint → sample a grasp → execute → judge. Returns timings and outcomes."""
    from benchbot.harness.cells.mujoco import make_physics_workcell
    from benchbot.harness.primitive import execute_grasp, grasp_in_base
    from benchbot.perception.geometry import grasp_to_camera
    from benchbot.perception.inpaint import inpaint

    p = lp.protocol
    wc = make_physics_workcell(lp, seed=seed)
    wc.arm.connect()
    wc.gripper.activate()
    rng = np.random.default_rng(seed)
    walls, sims, kinds = [], [], []
    try:
        for i in range(n_trials):
            obj = p.objects[i % len(p.objects)]
            pl = Placement(f"bench-{obj}-{i // len(p.objects)}", obj, p.seed + i)
            t0 = time.perf_counter()
            wc.stage.place(pl)
            frame = wc.camera.capture()
            depth = inpaint(frame.depth_m)
            grasp = _top_grasp(depth, frame, rng)
            pose = grasp_in_base(grasp_to_camera(grasp, frame.intrinsics), wc.t_base_camera)
            s0 = wc.world.current().time
            ex = execute_grasp(wc.arm, wc.gripper, pose, p.motion, p.gripper.opening_m, force=p.gripper.force,
                               grip_speed=p.gripper.speed, sleep=wc.sleep)
            j = wc.stage.judge(pl, ex)
            wc.arm.home()
            walls.append(time.perf_counter() - t0)
            sims.append(wc.world.current().time - s0)
            kinds.append(j.kind)
    finally:
        wc.close()
    return {"trials": n_trials, "wall_s_mean": float(np.mean(walls)), "sim_s_mean": float(np.mean(sims)),
            "wall_s_first": walls[0], "success_rate": kinds.count("success") / len(kinds)}


def run_benchmark(*, n_trials: int = 12, datagen_images: int = 4, workers: int = 1,
                  echo: Callable[[str], None] = print) -> dict:
    """Measure depth rendering, one grasp trial, the 180-trial run (estimated from `n_trials`, or
    measured when n_trials >= 180) and datagen throughput; print and return the figures."""
    from benchbot.perception.inpaint import inpaint
    from benchbot.sim.datagen import generate
    from benchbot.sim.noise import DepthNoise
    from benchbot.sim.world import SimWorld

    lp = load_protocol(default_protocol_path())
    out: dict = {}
    world = SimWorld(dict(lp.objects))
    world.load(lp.protocol.objects[0])
    world.render_depth()  # first call creates the GL context
    t = time.perf_counter()
    for _ in range(10):
        d = world.render_depth()
    out["depth_render_ms"] = (time.perf_counter() - t) * 100
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(10):
        inpaint(DepthNoise().apply(d, rng))
    out["noise_inpaint_ms"] = (time.perf_counter() - t) * 100
    world.close()
    echo(f"depth render (512×424): {out['depth_render_ms']:.1f} ms; noise + inpaint: {out['noise_inpaint_ms']:.1f} ms")

    one = physics_trials(lp, 1)
    echo(f"one benchmark trial (protocol motion, incl. scene build): sim {one['sim_s_mean']:.2f} s, "
         f"wall {one['wall_s_first']:.2f} s")
    many = physics_trials(lp, n_trials)
    total = lp.protocol.trials_per_object * len(lp.protocol.objects) * len(lp.protocol.methods)
    out.update(trial_sim_s=one["sim_s_mean"], trial_wall_s=many["wall_s_mean"],
               full_run_estimate_s=many["wall_s_mean"] * total, bench_success_rate=many["success_rate"])
    how = "measured" if n_trials >= total else "estimated"
    echo(f"{n_trials} trials: {many['wall_s_mean']:.2f} s wall per trial (detector: sampler stand-in) → "
         f"{total}-trial run ≈ {out['full_run_estimate_s'] / 60:.1f} min ({how}) + detector time; "
         f"success {many['success_rate']:.0%}")

    from benchbot.sim.datagen import UNIT_IMAGES

    if workers > 1:  # every worker needs at least one unit of images
        datagen_images = max(datagen_images, workers * UNIT_IMAGES)
    from benchbot.sim.randomize import Randomization
    from benchbot.train.objects import training_objects

    objects_file, train_ids = training_objects()
    with tempfile.TemporaryDirectory() as tmp:
        for pert, rnd in ((0, None), (4, None), (1, Randomization())):
            key = f"p{pert}" + ("_randomized" if rnd else "")
            extra: dict[str, Any] = dict(objects_file=objects_file, object_ids=train_ids, randomize=rnd) if rnd else {}
            t, cpu = time.perf_counter(), time.process_time()
            meta = generate(f"{tmp}/{key}", n_images=datagen_images, seed_start=0, workers=workers,
                            grasps_per_image=50, perturbations=pert, progress=False, **extra)
            dt, cpu = time.perf_counter() - t, time.process_time() - cpu
            n, n_img = meta["counts"]["grasps"], meta["counts"]["images"]
            out[f"datagen_grasps_per_h_{key}"] = n / dt * 3600
            out[f"datagen_trials_per_h_{key}"] = n * (1 + pert) / dt * 3600
            what = "--randomize (1–5 objects, all sensors), " if rnd else ""
            line = (f"datagen ({what}{workers} worker(s), {pert} perturbations, incl. start-up): {n} grasps in "
                    f"{dt:.1f} s "
                    f"→ {n / dt * 3600:,.0f} labelled grasps/h ({n * (1 + pert) / dt * 3600:,.0f} physics trials/h)")
            if workers == 1:  # CPU time: what one dedicated core would do
                out[f"datagen_grasps_per_cpu_h_{key}"] = n / cpu * 3600
                out[f"datagen_images_per_cpu_h_{key}"] = n_img / cpu * 3600
                line += f"; per CPU-hour {n / cpu * 3600:,.0f} grasps, {n_img / cpu * 3600:,.0f} images"
            echo(line)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    run_benchmark(n_trials=a.trials, datagen_images=a.images, workers=a.workers)
