"""GQ-CNN architectures: 4.0-PJ against TF golden outputs, 2.0 built from its metadata."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchbot.core.errors import BenchbotError
from benchbot.models.gqcnn import GQCNN, GQCNNConfig, predict_quality
from benchbot.models.weights import load_gqcnn, release_config


@pytest.fixture(scope="module")
def golden(shared_data):
    d = shared_data / "dexnet_sample" / "gqcnn_4.0_pj" / "reference_io"
    crops = torch.from_numpy(np.load(d / "golden_inputs_depth_crops.npy")).permute(0, 3, 1, 2)
    z = torch.from_numpy(np.load(d / "golden_inputs_grasp_depth.npy"))
    return crops, z, np.load(d / "golden_outputs_softmax.npy")


def test_shipped_4_0_pj_reproduces_tf_outputs(golden):
    crops, z, ref = golden
    model = load_gqcnn("gqcnn-4.0-pj")
    p = model.probabilities(crops, z).numpy()
    assert np.abs(p - ref).max() <= 1e-5
    assert sum(t.numel() for t in model.parameters()) == 631_410


def test_channels_last_and_chunks_match(golden):
    crops, z, ref = golden
    model = load_gqcnn("gqcnn-4.0-pj").to(memory_format=torch.channels_last)
    q = predict_quality(model, crops, z[:, 0], batch_size=5)
    assert np.abs(q.numpy() - ref[:, 1]).max() <= 1e-5


def test_frozen_model_passes_gradients_to_inputs(golden):
    crops, z, _ = golden
    model = load_gqcnn("gqcnn-4.0-pj")
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    x = crops[:2].clone().requires_grad_(True)
    model.quality(x, z[:2]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_forward_normalised_equals_forward(golden):
    crops, z, _ = golden
    model = load_gqcnn("gqcnn-4.0-pj")
    im_n = (crops - 0.7728025904549356) / 0.06816613525826426
    pose_n = (z - 0.7556286) / 0.06893365
    torch.testing.assert_close(model.forward_normalised(im_n, pose_n), model(crops, z), atol=1e-5, rtol=0)


def test_input_shape_checks(golden):
    crops, z, _ = golden
    model = load_gqcnn("gqcnn-4.0-pj")
    with pytest.raises(BenchbotError):
        model(crops[:, :, :32, :32], z)
    with pytest.raises(BenchbotError):
        model(crops, z[:3])
    assert model(crops[:, 0], z).shape == (24, 2)  # (N, H, W) accepted


def test_dexnet2_architecture_from_metadata(shared_data):
    cfg = release_config(shared_data / "dexnet_sample" / "gqcnn_2.0_gq_metadata", "gqcnn-2.0")
    assert cfg.im_size == 32 and cfg.crop == "96to32"
    assert [c.pad for c in cfg.convs] == ["SAME"] * 4
    assert [c.norm for c in cfg.convs] == [False, True, False, True]
    assert cfg.norm.pose_mean == pytest.approx(0.677359, abs=1e-6)  # index 2 of the 4-vector
    assert cfg.norm.im_std == pytest.approx(0.044147, abs=1e-6)
    model = GQCNN(cfg)
    assert model.feature_shape == (64, 16, 16) and model.fc3.in_features == 16384
    assert sum(p.numel() for p in model.parameters()) == 18_025_826  # "18 million" (Dex-Net 2.0 paper)
    out = model(torch.full((2, 1, 32, 32), 0.7), torch.tensor([0.68, 0.69]))
    assert out.shape == (2, 2) and torch.isfinite(out).all()


def test_lrn_matches_tensorflow_definition():
    cfg = GQCNNConfig.from_dict({**_tiny_cfg(), "convs": [{"name": "conv1_1", "filt_dim": 3, "num_filt": 7,
                                                           "norm": True}]})
    model = GQCNN(cfg)
    x = torch.randn(2, 7, 5, 5) * 10
    r, a, b, k = cfg.lrn_radius, cfg.lrn_alpha, cfg.lrn_beta, cfg.lrn_bias
    sq = F.pad(x * x, (0, 0, 0, 0, r, r))
    sums = torch.stack([sq[:, c:c + 2 * r + 1].sum(1) for c in range(7)], 1)
    torch.testing.assert_close(model._lrn(x), x / (k + a * sums) ** b, atol=1e-6, rtol=1e-5)


def test_same_padding_odd_input_and_pool():
    # 15px input, SAME conv + SAME 2×2 pool → ceil(15/2) = 8
    model = GQCNN(GQCNNConfig.from_dict({**_tiny_cfg(), "im_size": 15, "convs": [
        {"name": "conv1_1", "filt_dim": 4, "num_filt": 3, "pool_size": 2, "pool_stride": 2, "pad": "SAME"}]}))
    assert model.feature_shape == (3, 8, 8)
    assert model(torch.rand(1, 1, 15, 15), torch.tensor([0.7])).shape == (1, 2)


def test_config_roundtrip_and_bad_record():
    cfg = GQCNNConfig.from_dict(_tiny_cfg())
    assert GQCNNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(BenchbotError):
        GQCNNConfig.from_dict({"name": "x"})


def _tiny_cfg():
    return {"name": "tiny", "im_size": 8, "fc3": 4, "pc1": 2, "fc4": 4, "fc5": 2,
            "convs": [{"name": "conv1_1", "filt_dim": 3, "num_filt": 2}],
            "norm": {"im_mean": 0.7, "im_std": 0.05, "pose_mean": 0.7, "pose_std": 0.05}}
