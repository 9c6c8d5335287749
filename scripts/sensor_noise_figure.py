"""Real vs synthetic depth-sensor statistics (docs/readme/sim.md): writes docs/images/sensor_noise.png
and prints the markdown table. Real: the shipped PrimeSense (20 frames) and Kinect v2 (1 frame)
recordings. Synthetic: `--scenes` frames per sensor, rendered at the real recordings' geometry
(PrimeSense 0.663 m / 3.4°, Kinect v2 0.690 m / 2.1°, the others 0.66 m / 3°) with 1–5 low benchmark
objects and the fingers reaching in from the bottom.

    python scripts/sensor_noise_figure.py [--scenes 4] [--out docs/images/sensor_noise.png]

Needs matplotlib (`pip install matplotlib`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbot.config.protocol import default_protocol_path, load_protocol  # noqa: E402
from benchbot.sim.noise_stats import EDGE_BINS_PX, frame_stats, synthetic_frame  # noqa: E402
from benchbot.sim.sensors import SENSORS  # noqa: E402
from benchbot.sim.world import SimWorld  # noqa: E402

REC = ROOT / "benchbot" / "data" / "recordings"
OBJECTS = ["clamp", "screwdriver", "pudding-box", "banana", "scissors"]  # low, like the recordings' objects


def real_frames() -> dict[str, list[np.ndarray]]:
    from PIL import Image

    ps = [np.array(Image.open(REC / "default" / "frames" / f"{i:05d}.png")).astype(np.float32) / 1000 for i in range(20)]
    return {"primesense": ps, "kinect2": [np.load(REC / "kinect2_overhead" / "frames" / "00000.npy")[..., 0]]}


def synthetic(n_scenes: int) -> dict[str, list[np.ndarray]]:
    lp = load_protocol(default_protocol_path())
    world = SimWorld(dict(lp.objects))
    out: dict[str, list[np.ndarray]] = {}
    try:
        for name in SENSORS:
            out[name] = [synthetic_frame(world, dict(lp.objects), name, OBJECTS[:1 + k % 5], seed=k)[0]
                         for k in range(n_scenes)]
    finally:
        world.close()
    return out


def _fmt(v: list[float], scale: float = 1.0, digits: int = 2) -> str:
    lo, hi = min(v) * scale, max(v) * scale
    return f"{lo:.{digits}f}" if abs(hi - lo) < 10 ** -digits else f"{lo:.{digits}f}–{hi:.{digits}f}"


def table(stats: dict[tuple[str, str], list[dict]]) -> str:
    rows = ["| frames | n | invalid % | edge dropouts % (0–1.5 / 1.5–3 / 3–6 px) | flying pixels % "
            "| table noise mm (local / plane) | step mm at 0.65–0.70 m | bands px (L R T B) |",
            "|---|---|---|---|---|---|---|---|"]
    for (kind, name), ss in stats.items():
        step = [next((s for c, s in x["quant_steps"] if abs(c - 0.675) < 0.026), float("nan")) for x in ss]
        edges = " / ".join(_fmt([x["edge_dropout"][b] for x in ss], 100, 0) for b in range(3))
        bands = " ".join(_fmt([x["bands_px"][b] for x in ss], 1, 0) for b in range(4))
        rows.append(f"| {kind} {SENSORS[name].label} | {len(ss)} | {_fmt([x['invalid_fraction'] for x in ss], 100, 1)} "
                    f"| {edges} | {_fmt([x['flying_fraction'] for x in ss], 100, 0)} "
                    f"| {_fmt([x['table_local_std_m'] for x in ss], 1e3)} / "
                    f"{_fmt([x['table_plane_std_m'] for x in ss], 1e3)} | {_fmt(step, 1e3)} | {bands} |")
    return "\n".join(rows)


def figure(frames: dict[tuple[str, str], list[np.ndarray]], stats: dict[tuple[str, str], list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [("real", "primesense"), ("synthetic", "primesense"), ("real", "kinect2"), ("synthetic", "kinect2"),
             ("synthetic", "d435"), ("synthetic", "azure-nfov")]
    fig = plt.figure(figsize=(18, 8.5))
    grid = fig.add_gridspec(2, 6, height_ratios=[1.0, 1.6])
    for k, key in enumerate(shown):
        ax = fig.add_subplot(grid[0, k])
        d = frames[key][-1]
        valid = d > 0
        lo, hi = np.percentile(d[valid], [1, 99])
        g = np.clip((d - lo) / (hi - lo), 0, 1)
        rgb = np.stack([g, g, g], axis=-1)
        rgb[~valid] = (1.0, 0.1, 0.1)
        ax.imshow(rgb)
        ax.set_title(f"{key[0]} {SENSORS[key[1]].label}", fontsize=9)
        ax.axis("off")
    colours = dict(zip(SENSORS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
    centres = [0.75, 2.25, 4.5, 9.0, 14.0]
    ax = fig.add_subplot(grid[1, 0:2])
    for (kind, name), ss in stats.items():
        prof = np.nanmean([x["edge_dropout"] for x in ss], axis=0)
        ax.plot(centres, 100 * prof, "-o" if kind == "real" else "--", color=colours[name],
                lw=2.5 if kind == "real" else 1.2, label=f"{kind} {name}")
    ax.set(xlabel="distance to a depth edge (px)", ylabel="invalid %", title="edge dropouts",
           xticks=centres, xticklabels=[f"{a:g}–{b:g}" for a, b in zip(EDGE_BINS_PX[:-1], EDGE_BINS_PX[1:])])
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, 2:4])
    for (kind, name), ss in stats.items():
        pts = np.array([p for x in ss for p in x["quant_steps"]])
        ax.plot(pts[:, 0], 1e3 * pts[:, 1], "o" if kind == "real" else "x", color=colours[name],
                ms=9 if kind == "real" else 6, alpha=0.7, label=f"{kind} {name}")
    z = np.linspace(0.45, 0.8, 50)
    ax.plot(z, 1e3 * 2.906e-3 * z ** 2, ":", color="tab:orange", label="PrimeSense fit: 2.906e-3·z²")
    ax.set(xlabel="depth (m)", ylabel="effective step (mm)", title="quantisation step vs depth")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, 4:6])
    labels = [f"{k[0][:4]}\n{k[1]}" for k in stats]
    for i, (key, ss) in enumerate(stats.items()):
        for j, field in enumerate(("table_local_std_m", "table_plane_std_m")):
            v = [1e3 * x[field] for x in ss]
            ax.bar(i + 0.4 * j - 0.2, np.mean(v), 0.38, color=colours[key[1]], alpha=1.0 if j == 0 else 0.45,
                   hatch="" if key[0] == "real" else "//")
            ax.plot([i + 0.4 * j - 0.2] * len(v), v, "k.", ms=3)
        ax.text(i, -0.25, f"{100 * np.mean([x['invalid_fraction'] for x in ss]):.0f}%", ha="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set(ylabel="mm", title="table noise: local 9×9 (solid) / vs plane (light); invalid % below")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "sensor_noise.png")
    a = ap.parse_args()
    frames = {("real", k): v for k, v in real_frames().items()}
    frames |= {("synthetic", k): v for k, v in synthetic(a.scenes).items()}
    stats = {key: [frame_stats(f, SENSORS[key[1]].intrinsics) for f in fs] for key, fs in frames.items()}
    print(table(stats))
    figure(frames, stats, a.out)
    print(f"figure: {a.out}")


if __name__ == "__main__":
    main()
