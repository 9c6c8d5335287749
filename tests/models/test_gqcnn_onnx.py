"""ONNX export of the GQ-CNN: parity with PyTorch and the TF golden outputs."""
import numpy as np
import pytest
import torch

from benchbot.core.errors import BenchbotError
from benchbot.models.gqcnn import GQCNN
from benchbot.models.weights import load_gqcnn, release_config

ort = pytest.importorskip("onnxruntime")
from benchbot.models.gqcnn_onnx import OnnxGQCNN, export_onnx  # noqa: E402


def test_onnx_4_0_pj_matches_golden(shared_data, tmp_path):
    d = shared_data / "dexnet_sample" / "gqcnn_4.0_pj" / "reference_io"
    crops = np.load(d / "golden_inputs_depth_crops.npy").transpose(0, 3, 1, 2)
    z = np.load(d / "golden_inputs_grasp_depth.npy")
    model = load_gqcnn("gqcnn-4.0-pj")
    path = tmp_path / "g.onnx"
    export_onnx(model, path)
    onnx = OnnxGQCNN(path, model.cfg)
    p = onnx.probabilities(crops, z)
    assert np.abs(p - np.load(d / "golden_outputs_softmax.npy")).max() <= 1e-5
    with torch.no_grad():
        q_t = model.quality(torch.from_numpy(crops), torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(onnx.predict(crops, z, batch_size=7), q_t, atol=1e-5)
    with pytest.raises(BenchbotError):
        onnx.probabilities(crops[:, :, :32, :32], z)


def test_onnx_dexnet2_lrn_parity(shared_data):
    torch.manual_seed(0)
    model = GQCNN(release_config(shared_data / "dexnet_sample" / "gqcnn_2.0_gq_metadata")).freeze()
    x, z = torch.rand(5, 1, 32, 32) * 0.1 + 0.65, torch.full((5,), 0.68)
    onnx = OnnxGQCNN.from_model(model)
    with torch.no_grad():
        np.testing.assert_allclose(onnx.probabilities(x.numpy(), z.numpy()), model.probabilities(x, z).numpy(),
                                   atol=1e-5)


def test_onnx_bad_graph(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(BenchbotError):
        OnnxGQCNN(bad, load_gqcnn().cfg)
