"""GQ-CNN weight loaders: TF checkpoint reader, weights_npy/, our .pt, and their error paths."""
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from benchbot.core.errors import BenchbotError
from benchbot.models.gqcnn import GQCNN
from benchbot.models.tf_checkpoint import CheckpointError, read_checkpoint
from benchbot.models.weights import (
    SHIPPED,
    convert_release,
    load_gqcnn,
    load_release,
    load_weights_npy,
    release_config,
    save_gqcnn,
    state_dict_to_tf,
)

DTYPE_CODE = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9}


# --- a minimal TF V2 bundle writer (test fixture; independent of the reader) -------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _block(entries: list[tuple[bytes, bytes]], restart_every: int = 3) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (k, v) in enumerate(entries):
        shared = 0
        if i % restart_every == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(k) - shared) + _varint(len(v)) + k[shared:] + v
        prev = k
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray], per_block: int = 4) -> None:
    data, entries = bytearray(), [(b"", _field(1, 1) + _field(3, _field(1, 1)))]
    for name in sorted(tensors):
        a = np.asarray(tensors[name])  # (ascontiguousarray would turn scalars into 1-D)
        shape = b"".join(_field(2, _field(1, d)) for d in a.shape)
        offset = _field(4, len(data)) if len(data) else b""
        entry = _field(1, DTYPE_CODE[a.dtype]) + _field(2, shape) + offset + _field(5, a.nbytes)
        entries.append((name.encode(), entry))
        data += a.astype(a.dtype.newbyteorder("<")).tobytes()
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    table, index = bytearray(), []
    for i in range(0, len(entries), per_block):
        chunk = entries[i:i + per_block]
        blk = _block(chunk)
        index.append((chunk[-1][0], _varint(len(table)) + _varint(len(blk))))
        table += blk + b"\x00" + b"\x00" * 4
    meta_off = len(table)
    meta = _block([])
    table += meta + b"\x00" * 5
    idx_off = len(table)
    idx = _block(index, restart_every=1)
    table += idx + b"\x00" * 5
    footer = _varint(meta_off) + _varint(len(meta)) + _varint(idx_off) + _varint(len(idx))
    footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57)
    prefix.with_name(prefix.name + ".index").write_bytes(bytes(table + footer))


def _table(entries: list[tuple[bytes, bytes]], per_block: int = 4) -> bytes:
    table, index = bytearray(), []
    for i in range(0, len(entries), per_block):
        chunk = entries[i:i + per_block]
        blk = _block(chunk)
        index.append((chunk[-1][0], _varint(len(table)) + _varint(len(blk))))
        table += blk + b"\x00" * 5
    meta_off, meta = len(table), _block([])
    table += meta + b"\x00" * 5
    idx_off, idx = len(table), _block(index, restart_every=1)
    table += idx + b"\x00" * 5
    footer = _varint(meta_off) + _varint(len(meta)) + _varint(idx_off) + _varint(len(idx))
    return bytes(table + footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57))


def write_v1(path: Path, tensors: dict[str, np.ndarray], split: str | None = None, dtype: bytes | int = 1) -> None:
    """A TF V1 tensor-slice checkpoint; `split` names a tensor stored as two row slices; `dtype` is
    the metadata's dtype field (1: DT_FLOAT)."""
    metas, entries = b"", []
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        shape = b"".join(_field(2, _field(1, d)) for d in a.shape)
        metas += _field(1, _field(1, name.encode()) + _field(2, shape) + _field(3, dtype) + _field(4, b""))
        parts = [(0, a.shape[0] // 2), (a.shape[0] // 2, a.shape[0] - a.shape[0] // 2)] if name == split else [None]
        for j, part in enumerate(parts):
            if part is None:
                sl, vals = b"", a
            else:
                sl = _field(1, _field(1, part[0]) + _field(2, part[1])) + b"".join(_field(1, b"") for _ in a.shape[1:])
                vals = a[part[0]:part[0] + part[1]]
            proto = _field(1, 1) + _field(5, vals.astype("<f4").tobytes())
            saved = _field(1, name.encode()) + _field(2, sl) + _field(3, proto)
            entries.append((b"\x00" + name.encode() + bytes([j]), _field(2, saved)))
    entries = [(b"", _field(1, metas))] + sorted(entries)
    path.write_bytes(_table(entries))


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pj(shared_data) -> Path:
    return shared_data / "dexnet_sample" / "gqcnn_4.0_pj"


@pytest.fixture(scope="module")
def golden(pj):
    d = pj / "reference_io"
    crops = torch.from_numpy(np.load(d / "golden_inputs_depth_crops.npy")).permute(0, 3, 1, 2)
    depths = torch.from_numpy(np.load(d / "golden_inputs_grasp_depth.npy"))
    return crops, depths, np.load(d / "golden_outputs_softmax.npy")


def _copy_release(pj: Path, dst: Path, with_ckpt: bool = True, with_npy: bool = False) -> Path:
    dst.mkdir()
    for f in ("config.json", "architecture.json", "im_mean.npy", "im_std.npy", "pose_mean.npy", "pose_std.npy"):
        shutil.copy(pj / f, dst / f)
    if with_ckpt:
        for f in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
            shutil.copy(pj / f, dst / f)
    if with_npy:
        shutil.copytree(pj / "weights_npy", dst / "weights_npy")
    return dst


# --- checkpoint reader -----------------------------------------------------------------------------

def test_checkpoint_reader_matches_weights_npy(pj):
    ckpt = read_checkpoint(pj / "model.ckpt")
    npy = load_weights_npy(pj / "weights_npy")
    assert sorted(ckpt) == sorted(npy) and len(ckpt) == 17
    for k in ckpt:
        assert ckpt[k].dtype == npy[k].dtype and np.array_equal(ckpt[k], npy[k]), k


def test_written_bundle_roundtrips(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"a/b/w": rng.normal(size=(3, 4, 2)).astype(np.float32), "a/b/bias": np.arange(5, dtype=np.int64),
               "scalar": np.array(2.5), "c/d": rng.normal(size=(7,)).astype(np.float32), "e": np.int32([1, 2])}
    write_bundle(tmp_path / "m.ckpt", tensors, per_block=2)
    back = read_checkpoint(tmp_path / "m.ckpt")
    assert sorted(back) == sorted(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v)


def test_crc32c_known_values():
    from benchbot.models.tf_checkpoint import _crc_update, crc32c
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    blob = np.random.default_rng(3).integers(0, 256, 200_003, dtype=np.uint8).tobytes()
    assert crc32c(blob) == _crc_update(blob, 0xFFFFFFFF) ^ 0xFFFFFFFF  # lanes == plain loop


def test_flipped_byte_fails_checksum(pj, tmp_path):
    rel = _copy_release(pj, tmp_path / "r")
    data = rel / "model.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[123_456] ^= 0x01  # one bit inside fc3's weights
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(rel / "model.ckpt")


def test_truncated_and_corrupt_checkpoints(pj, tmp_path):
    rel = _copy_release(pj, tmp_path / "r")
    data = rel / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(rel / "model.ckpt")
    index = rel / "model.ckpt.index"
    raw = index.read_bytes()
    index.write_bytes(raw[:-10])
    with pytest.raises(CheckpointError):
        read_checkpoint(rel / "model.ckpt")
    index.write_bytes(b"\x00" * 20 + raw[20:])  # garbage where the first block was
    with pytest.raises(BenchbotError):
        load_release(rel)
    (rel / "model.ckpt.data-00000-of-00001").unlink()
    index.write_bytes(raw)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(rel / "model.ckpt")


# --- release folders -------------------------------------------------------------------------------

def test_release_from_checkpoint_and_from_npy_agree(pj, tmp_path, golden):
    crops, z, ref = golden
    a = load_release(_copy_release(pj, tmp_path / "ckpt"))
    b = load_release(_copy_release(pj, tmp_path / "npy", with_ckpt=False, with_npy=True))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    assert np.abs(a.probabilities(crops, z).numpy() - ref).max() <= 1e-5


def test_dexnet2_release_with_generated_legacy_weights(shared_data, tmp_path):
    meta = shared_data / "dexnet_sample" / "gqcnn_2.0_gq_metadata"
    torch.manual_seed(0)
    model = GQCNN(release_config(meta, "gqcnn-2.0"))
    rel = tmp_path / "GQCNN-2.0"
    shutil.copytree(meta, rel)
    tf = state_dict_to_tf(model, legacy=True)
    assert tf["im_stream/conv1_1/conv1_1W"].shape == (7, 7, 1, 64) and tf["im_stream/fc3W"].shape == (16384, 1024)
    tf["global_step"] = np.array(1000, dtype=np.int64)  # bookkeeping tensors are ignored
    tf["im_stream/conv1_1/conv1_1W/Momentum"] = np.zeros((7, 7, 1, 64), np.float32)
    write_bundle(rel / "model.ckpt", tf)
    loaded = load_gqcnn(rel)
    x, z = torch.rand(4, 1, 32, 32) * 0.1 + 0.65, torch.tensor([0.66, 0.67, 0.68, 0.69])
    torch.testing.assert_close(loaded(x, z), model(x, z), atol=1e-5, rtol=0)
    # and via our .pt
    pt = save_gqcnn(loaded, tmp_path / "g2.pt")
    torch.testing.assert_close(load_gqcnn(pt)(x, z), model(x, z), atol=1e-5, rtol=0)
    # Berkeley's 2017 release is a TF V1 checkpoint: one model.ckpt file
    for f in rel.glob("model.ckpt.*"):
        f.unlink()
    del tf["global_step"]
    write_v1(rel / "model.ckpt", tf, split="im_stream/fc3W")
    torch.testing.assert_close(load_gqcnn(rel)(x, z), model(x, z), atol=1e-5, rtol=0)


def test_v1_reader_slices_and_truncation(tmp_path):
    rng = np.random.default_rng(2)
    t = {"w": rng.normal(size=(5, 3)).astype(np.float32), "b": rng.normal(size=(3,)).astype(np.float32)}
    write_v1(tmp_path / "m.ckpt", t, split="w")
    back = read_checkpoint(tmp_path / "m.ckpt")
    assert all(np.array_equal(back[k], v) for k, v in t.items())
    raw = (tmp_path / "m.ckpt").read_bytes()
    (tmp_path / "m.ckpt").write_bytes(raw[:-30])
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "m.ckpt")


def test_a_field_of_the_wrong_wire_type_is_refused(tmp_path):
    """A dtype code stored as the text b"1" (bytes where a number belongs) was read by int() as DT_FLOAT."""
    write_v1(tmp_path / "m.ckpt", {"b": np.ones(3, np.float32)}, dtype=b"1")
    with pytest.raises(CheckpointError, match="bytes where a number belongs"):
        read_checkpoint(tmp_path / "m.ckpt")


def test_fc3_nhwc_order_matters(pj, tmp_path, golden):
    # scrambling the NHWC→NCHW reorder must break parity (proves the test can fail)
    crops, z, ref = golden
    tensors = load_weights_npy(pj / "weights_npy")
    model = load_release(_copy_release(pj, tmp_path / "r"))
    w = tensors["im_stream/fc3_weights"]
    model.fc3.weight.data = torch.from_numpy(np.ascontiguousarray(w.T))  # naive: no reorder
    assert np.abs(model.probabilities(crops, z).numpy() - ref).max() > 1e-3


def test_release_shape_mismatch_and_missing(pj, tmp_path):
    rel = _copy_release(pj, tmp_path / "r", with_ckpt=False, with_npy=True)
    np.save(rel / "weights_npy" / "im_stream__conv1_2__conv1_2_bias.npy", np.zeros(17, np.float32))
    with pytest.raises(BenchbotError, match="conv1_2.bias"):
        load_release(rel)
    (rel / "weights_npy" / "im_stream__conv1_2__conv1_2_bias.npy").unlink()
    with pytest.raises(BenchbotError, match="conv1_2_bias"):
        load_release(rel)
    (rel / "im_std.npy").unlink()
    with pytest.raises(BenchbotError, match="im_std"):
        load_release(rel)


def test_wrong_architecture(pj, shared_data, tmp_path):
    # 4.0-PJ weights in a folder that says Dex-Net 2.0
    rel = _copy_release(pj, tmp_path / "r")
    for f in ("config.json", "architecture.json", "mean.npy", "std.npy", "pose_mean.npy", "pose_std.npy"):
        shutil.copy(shared_data / "dexnet_sample" / "gqcnn_2.0_gq_metadata" / f, rel / f)
    (rel / "im_mean.npy").unlink()
    (rel / "im_std.npy").unlink()
    with pytest.raises(BenchbotError) as e:
        load_release(rel)
    assert "\n" not in e.value.one_line()


# --- our .pt -------------------------------------------------------------------------------------------

def test_shipped_file_equals_fresh_conversion(pj, tmp_path):
    fresh = load_gqcnn(convert_release(pj, tmp_path / "x.pt", "gqcnn-4.0-pj"))
    shipped = load_gqcnn("gqcnn-4.0-pj")
    assert fresh.cfg == shipped.cfg
    for k, v in shipped.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k])
    blob = torch.load(SHIPPED["gqcnn-4.0-pj"], weights_only=True)
    assert blob["format"] == "benchbot-gqcnn" and all(v.dtype == torch.float32 for v in blob["state_dict"].values())


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pt_errors(tmp_path):
    with pytest.raises(BenchbotError, match="not found"):
        load_gqcnn(tmp_path / "nope.pt")
    with pytest.raises(BenchbotError, match="unknown GQ-CNN"):
        load_gqcnn("gqcnn-9.9")
    with pytest.raises(BenchbotError, match="not distributed"):
        load_gqcnn("gqcnn-2.0")
    evil = tmp_path / "evil.pt"
    torch.save({"format": "benchbot-gqcnn", "payload": Evil()}, evil)
    with pytest.raises(BenchbotError, match="pickled code"):
        load_gqcnn(evil)
    raw = SHIPPED["gqcnn-4.0-pj"].read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BenchbotError, match="corrupt or truncated"):
        load_gqcnn(trunc)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(BenchbotError, match="not a benchbot GQ-CNN"):
        load_gqcnn(other)
    blob = torch.load(SHIPPED["gqcnn-4.0-pj"], weights_only=True)
    blob["state_dict"]["fc5.weight"] = torch.zeros(3, 128)
    bad = tmp_path / "bad.pt"
    torch.save(blob, bad)
    with pytest.raises(BenchbotError, match="fc5.weight"):
        load_gqcnn(bad)
    del blob["state_dict"]["fc5.weight"]
    torch.save(blob, bad)
    with pytest.raises(BenchbotError, match="missing"):
        load_gqcnn(bad)
