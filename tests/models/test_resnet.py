import pytest
import torch

from benchbot.models.resnet import ResNet


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("depth,expected", [(18, 11_689_512), (34, 21_797_672)])
def test_param_count_matches_standard_resnet(depth: int, expected: int) -> None:
    assert n_params(ResNet(depth, width=64, in_channels=3, num_classes=1000)) == expected


@pytest.mark.parametrize("depth", [18, 34])
def test_feature_shapes_one_channel_narrow(depth: int) -> None:
    net = ResNet(depth, width=8, in_channels=1).eval()
    x = torch.randn(2, 1, 64, 64)
    assert net(x).shape == (2, 64)
    assert net.feature_dim == 64
    assert net.feature_map(x).shape == (2, 64, 2, 2)


def test_logits_head_and_bad_depth() -> None:
    assert ResNet(18, width=4, num_classes=5)(torch.randn(2, 1, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError):
        ResNet(50)


def test_gradients_reach_stem() -> None:
    net = ResNet(18, width=4)
    net(torch.randn(2, 1, 32, 32)).sum().backward()
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0
