"""Depth sensors for domain-randomised data: intrinsics of one depth mode and a noise model each.

Measured here on real frames (docs/readme/sim.md, `scripts/sensor_noise_figure.py`):
* primesense — the shipped raw Carmine 1.08 recording (benchbot/data/recordings/default, 20 frames):
  1/z quantised in steps of 2.906e-3 m⁻¹ (fits the observed millimetre values ≥ 0.6 m with Jaccard
  0.98; ≈ Kinect v1's f·b/Δd = 580 px · 7.5 cm · 8), then to 1 mm; table noise 0.5 mm locally (mostly
  the quantisation), 1.8 mm against a plane (smooth distortion); invalid bands left 38 / right 12 /
  top 11 / bottom 15 px; holes right of near objects ≈ 21 px·m · (1/z_near − 1/z_far) wide; edge
  dropouts (away from the border regions) 3–11 % at an edge, 3–5 % at 2 px, 1–4 % at 3–6 px.
* kinect2 — the shipped Kinect v2 frame (benchbot/data/recordings/kinect2_overhead): float output
  (no quantisation); table noise 1.3 mm locally, 1.9 mm against a plane; flying pixels: 70 % of the
  valid pixels at depth edges lie between their neighbours (ramps, PrimeSense: 0.4 %); dropouts 3–4 %
  up to 12 px from an edge; lost beyond ≈ 38° off-axis (tan 0.8) in the corners; nothing under 0.5 m.
Not measured here (no real frames in the project) — from the makers' figures:
* d415 / d435 — Intel RealSense active stereo, 640×480 depth mode (D435: fx 384.2, cx 319.5,
  cy 236.4, a unit's `rs-enumerate-devices -c`; D415: fx from the 65° datasheet FOV at 1280×720 times
  0.6, the D435's 640×480/1280×720 ratio); RMS error z²·0.08/(f·b) (Intel's formula, subpixel 0.08);
  disparity in 1/32 px, 1 mm depth units; left imager is the reference: shadows left of near objects
  and the invalid band of width f·b/z on the left.
* azure-nfov — Azure Kinect NFOV unbinned 640×576 (fx 503.9, cx 332.1, cy 325.9, one unit's factory
  calibration); time of flight, 1 mm units, operating range 0.5–3.86 m, the hexagonal illuminated
  field, edge pixels invalidated by the depth engine; noise set like the Kinect v2's.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Intrinsics
from benchbot.sim.noise import SensorNoise


@dataclass(frozen=True)
class Sensor:
    name: str
    label: str
    intrinsics: Intrinsics
    noise: SensorNoise
    measured: bool  # noise parameters measured on real frames in this project

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "intrinsics": self.intrinsics.to_dict(),
                "noise": self.noise.to_json(), "measured": self.measured}


def _realsense(fx: float, baseline_m: float, min_m: float) -> SensorNoise:
    fb = fx * baseline_m
    return SensorNoise(sigma_a_m=0.0, sigma_b_per_m=0.08 / fb, lowfreq_sigma_m=0.001,
                       disparity_q_per_m=1.0 / (32.0 * fb), depth_unit_m=0.001, shadow_fb_px_m=fb,
                       shadow_side="left", shadow_band=True, edge_drop_p0=0.2, edge_drop_decay_px=1.5,
                       speckle_prob=0.002, speckle_sigma_px=1.0, min_range_m=min_m, max_range_m=10.0)


SENSORS: dict[str, Sensor] = {s.name: s for s in (
    Sensor("kinect2", "Microsoft Kinect v2",
           Intrinsics(364.42010498046875, 364.42010498046875, 263.3539123535156, 199.56739807128906, 512, 424),
           SensorNoise(sigma_a_m=0.0007, sigma_b_per_m=0.0013, lowfreq_sigma_m=0.0019, flying_prob=0.8,
                       flying_width_px=1.5, edge_drop_p0=0.04,
                       edge_drop_decay_px=12.0, speckle_prob=0.002, speckle_sigma_px=0.0, radial_t50=0.8,
                       radial_width=0.06, radial_pmax=0.8, min_range_m=0.5, max_range_m=4.5), True),
    Sensor("primesense", "PrimeSense Carmine 1.08", Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480),
           SensorNoise(sigma_a_m=0.0, sigma_b_per_m=0.0007, lowfreq_sigma_m=0.0023, disparity_q_per_m=2.906e-3,
                       depth_unit_m=0.001, shadow_fb_px_m=21.0, shadow_side="right", edge_drop_p0=0.1,
                       edge_drop_decay_px=2.5, speckle_prob=0.001, speckle_sigma_px=1.0,
                       band_px=(38, 12, 11, 15), band_jitter_px=4.0, min_range_m=0.35, max_range_m=3.5), True),
    Sensor("d415", "Intel RealSense D415", Intrinsics(602.8, 602.8, 319.5, 239.5, 640, 480),
           _realsense(602.8, 0.055, 0.16), False),
    Sensor("d435", "Intel RealSense D435", Intrinsics(384.2, 384.2, 319.5, 236.4, 640, 480),
           _realsense(384.2, 0.050, 0.105), False),
    Sensor("azure-nfov", "Azure Kinect NFOV unbinned",
           Intrinsics(503.93, 503.98, 332.06, 325.88, 640, 576),
           SensorNoise(sigma_a_m=0.0007, sigma_b_per_m=0.0013, lowfreq_sigma_m=0.001, depth_unit_m=0.001,
                       edge_drop_p0=0.5, edge_drop_decay_px=1.0, speckle_prob=0.002, speckle_sigma_px=1.0,
                       hexagon=True, min_range_m=0.5, max_range_m=3.86), False),
)}


def sensor(name: str) -> Sensor:
    if name not in SENSORS:
        raise BenchbotError(f"unknown sensor '{name}'", f"use one of: {', '.join(SENSORS)}")
    return SENSORS[name]
