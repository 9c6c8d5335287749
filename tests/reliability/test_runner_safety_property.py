"""Property test at the runner level: whatever a detector returns — NaN, inf, off-image, negative
width or depth, wildly deep grasps, not a Grasp at all — no pose outside the safety limits ever
reaches the (dry-run) arm, and every unusable grasp is rejected with its reason stored."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchbot.core.errors import BenchbotError
from benchbot.core.types import Grasp, Pose
from benchbot.harness.runner import RunConfig, Runner
from benchbot.harness.workcell import build_workcell
from benchbot.results.store import Store

H, W = 480, 640  # the shipped recording's frames

wild = st.floats(allow_nan=True, allow_infinity=True, width=32)
grasps = st.one_of(
    st.builds(Grasp, row=st.floats(0, H - 1), col=st.floats(0, W - 1), angle_rad=st.floats(-7, 7),  # in image
              width_px=st.floats(1, 200), depth_m=st.floats(0.2, 1.5), score=st.none()),
    st.builds(Grasp, row=wild, col=wild, angle_rad=wild, width_px=wild, depth_m=wild, score=st.none()),
    st.builds(Grasp, row=st.floats(-2000, 3000), col=st.floats(-2000, 3000), angle_rad=st.floats(-7, 7),
              width_px=st.floats(-50, 50), depth_m=st.floats(-1, 3), score=st.none()),
    st.sampled_from([None, "no grasp", (1.0, 2.0)]),
)


def _expected_rejection(g) -> bool:
    if not isinstance(g, Grasp):
        return True
    vals = (g.row, g.col, g.angle_rad, g.width_px, g.depth_m)
    if not all(math.isfinite(v) for v in vals):
        return True
    return not (0 <= g.row < H and 0 <= g.col < W) or g.width_px <= 0 or g.depth_m <= 0


class _Fake:
    name = "fake"

    def __init__(self, outputs):
        self.outputs, self.i = outputs, 0

    def detect(self, frame):
        g = self.outputs[self.i]
        self.i += 1
        if g == "no grasp":
            raise BenchbotError("fake detector: no grasp found", "nothing to fix")
        return g


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # a full run per example: no shrinking
@given(outputs=st.lists(grasps, min_size=6, max_size=6))
def test_no_unsafe_pose_reaches_the_arm_and_bad_grasps_are_rejected_with_a_reason(outputs, rel_module):
    rel = rel_module
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proto = rel.write_protocol(tmp)  # 6 trials
        cells = []

        def factory(backend, loaded, cfg):
            cells.append(build_workcell("replay", loaded, cfg))
            return cells[-1]

        class FakeRunner(Runner):
            def _detectors(self, methods):
                return {m: _Fake(outputs) for m in methods}, {}

        cfg = RunConfig(protocol_path=proto, db_path=tmp / "r.db", results_dir=tmp / "res", backend="replay",
                        evaluator="none")
        summary = FakeRunner(cfg, workcell_factory=factory).run()
        assert summary.pending == 0 and summary.finals + summary.aborted == 6
        wc = cells[0]
        gate = wc.arm.gate
        for entry in wc.arm.arm.log:  # what the dry-run arm actually received
            if entry["cmd"] != "move_linear":
                continue
            assert all(math.isfinite(v) for v in entry["pose"]), entry
            pose = Pose.from_rotvec(entry["pose"])
            assert gate.violation(pose, entry["speed_mps"], entry["accel_mps2"]) is None, entry
        with Store(tmp / "r.db", readonly=True) as store:
            att = store.tables(summary.run_id)["attempts"].sort_values("seq")
        assert len(att) == 6
        for g, row in zip(outputs, att.itertuples(), strict=True):
            if _expected_rejection(g):
                assert (row.status, row.cause) == ("final", "no grasp") and isinstance(row.detection_error, str), \
                    (g, row.status, row.cause, row.detection_error, row.reason)
                assert not isinstance(row.grasp_pose, str), row  # no metric pose was computed
            else:
                assert not isinstance(row.detection_error, str), (g, row.detection_error)
                if row.status == "aborted":
                    assert row.reason.startswith(("safety gate:", "device fault:")), row.reason
