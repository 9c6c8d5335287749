"""prop-gqcnn's answers on the shipped recordings do not change when its pipeline is made faster.

Golden values: the grasp and q that `PropGQCNN()` (default options, seed 0, ONNX Runtime) returned on
these frames (prepared as in a trial: inpainted, table plane and workspace mask) before the speed-ups
of issue 15 (commit c20360a). q is the GQ-CNN's fp32 value of that grasp.
"""
import numpy as np
import pytest
import torch

from benchbot.core.paths import RECORDINGS_DIR
from benchbot.detectors.prop_gqcnn import PropGQCNN
from benchbot.devices.cameras.recording import read_recording
from benchbot.perception.inpaint import inpaint_frame
from benchbot.perception.workspace import prepare_frame, recording_workspace

# (recording, frame, candidates, (row, col, angle_rad, depth_m), q)
GOLDEN = [
    ("default", 0, 741, (243.0, 345.0, 0.32175055439664213, 0.6485191232049287), 0.865519106388092),
    ("default", 3, 784, (162.0, 317.0, 0.33929261445404446, 0.6331314094516471), 0.6354541182518005),
    ("default", 5, 790, (178.0, 309.0, -0.9994588469612699, 0.6203465298912768), 0.6670763492584229),
    ("default", 10, 1000, (93.0, 396.0, -1.3909428270024184, 0.6560911187494592), 0.8691039681434631),
    ("default", 13, 970, (273.0, 489.0, 0.7853981633974483, 0.6436572373809146), 0.7940210103988647),
    ("default", 18, 1000, (277.0, 493.0, 0.7853981633974483, 0.6375606276768526), 0.7793042063713074),
    ("kinect2_overhead", 0, 340, (169.0, 219.0, 0.540419500270584, 0.6664094066278097), 0.7520999312400818),
]


def _prepared(name: str, i: int):
    rec = read_recording(RECORDINGS_DIR / name)
    return prepare_frame(inpaint_frame(rec.frame(i)), recording_workspace(rec))


@pytest.fixture(scope="module")
def detector():
    return PropGQCNN()  # default options: ranking, 1000 candidates, GQCNN-4.0-PJ, runtime auto


@pytest.mark.parametrize(("name", "i", "n", "pose", "q"), GOLDEN, ids=[f"{g[0]}-{g[1]}" for g in GOLDEN])
def test_same_grasp_and_q_as_before(detector, name, i, n, pose, q):
    frame = _prepared(name, i)
    g = detector.detect(frame)
    assert detector.last_info.num_scored == detector.last_info.num_candidates == n
    assert (g.row, g.col, g.angle_rad, g.depth_m) == pose
    assert g.score == pytest.approx(q, abs=1e-5)
    # the detector's q is the evaluator's q of that grasp on the same frame
    assert detector.evaluator.quality(frame, g) == pytest.approx(g.score, abs=1e-7)


def test_torch_runtime_picks_the_same_grasp():
    name, i, n, pose, q = GOLDEN[-1]
    det = PropGQCNN(runtime="torch")
    g = det.detect(_prepared(name, i))
    assert det.last_info.num_candidates == n
    assert (g.row, g.col, g.angle_rad, g.depth_m) == pose
    assert g.score == pytest.approx(q, abs=1e-5)


def test_parallel_batches_give_the_single_thread_values():
    pytest.importorskip("onnxruntime")
    from benchbot.models.gqcnn_onnx import OnnxGQCNN
    from benchbot.models.weights import load_gqcnn

    rng = np.random.default_rng(0)
    crops = (0.7 + 0.05 * rng.random((250, 1, 96, 96))).astype(np.float32)
    z = rng.uniform(0.6, 0.75, 250).astype(np.float32)
    model = load_gqcnn("gqcnn-4.0-pj")
    one, two = OnnxGQCNN.from_model(model, threads=1), OnnxGQCNN.from_model(model, threads=2)
    assert one.workers == 1 and two.workers == 2
    seen = []

    def crops_for(sl):
        seen.append((sl.start, sl.stop))
        return crops[sl]

    a = one.predict(crops, z, batch_size=60)
    b = two.predict_batches(crops_for, z, batch_size=60)
    assert sorted(seen) == [(0, 60), (60, 120), (120, 180), (180, 240), (240, 250)]
    assert np.array_equal(a, b)
    assert np.array_equal(b[:7], one.quality(crops[:7], z[:7]))  # batching does not change q
    with torch.no_grad():
        ref = model.quality(torch.from_numpy(crops), torch.from_numpy(z)).numpy()
    assert np.abs(b - ref).max() < 1e-5
