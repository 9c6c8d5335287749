"""Hypothesis strategies for the CLI fuzz test (tests/reliability/test_cli_fuzz.py): garbage and
mutated versions of every input file benchbot reads, and of command-line values.

A mutation takes a good file's parsed content and applies 1–3 edits anywhere in it: replace a value
with a nasty one (NaN, ±inf, huge or negative numbers, markup, path-like text, wrong types),
delete a key or add an unknown one. Files are also fuzzed as raw bytes: random, empty, truncated,
or the good text in another encoding.
"""
from __future__ import annotations

import copy
import io
import json
from typing import Any

import numpy as np
import yaml
from hypothesis import strategies as st

MARKUP = ["[/]", "[bold]x[/bold]", "[red]", ":thumbs_up:", "x[/]y", "[link=file:///etc]a[/link]"]
PATHISH = ["..", ".", "../..", "/", "/etc/passwd", "a/../../b", "~", "con:", "x\\..\\y", "nul"]
WEIRD_TEXT = ["", " ", "\t", "é", "\u202e", "x" * 300, "null", "NaN", "-0", "1e999", "0x10", "１"]
NUMBERS = [float("nan"), float("inf"), float("-inf"), 0, -0.0, -1, -1e-9, 1e-300, 1e308, 2**31, 2**63, 10**30,
           -(10**30), 7, 0.5, 1.5]
NASTY = st.sampled_from([*NUMBERS, *MARKUP, *PATHISH, *WEIRD_TEXT, None, True, False, [], {}, [1, "a"],
                         {"k": [None]}, [[[]]]])
CLI_TEXT = st.one_of(st.sampled_from([*MARKUP, *PATHISH, *WEIRD_TEXT, "nan", "inf", "-1", "0", "1", "2.5",
                                      str(10**30), "true", "1,2,3", "a=b"]),
                     st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                             max_size=12))


def _slots(data: Any, out: list | None = None) -> list[tuple[Any, Any]]:
    """Every (container, key) of a nested dict/list structure (tensors and arrays are leaves)."""
    out = [] if out is None else out
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for k, v in items:
        out.append((data, k))
        _slots(v, out)
    return out


def _same_kind(value: Any) -> st.SearchStrategy:
    """Nasty values of the same type as `value` (they get past type checks, into range checks)."""
    if isinstance(value, bool):
        return st.sampled_from([not value, 0, 1, "yes"])
    if isinstance(value, (int, float)):
        return st.sampled_from(NUMBERS)
    if isinstance(value, str):
        return st.sampled_from([*MARKUP, *PATHISH, *WEIRD_TEXT])
    return NASTY


@st.composite
def mutated(draw, base: Any, nasty: st.SearchStrategy = NASTY) -> Any:
    data = copy.deepcopy(base)
    rng = draw(st.randoms(use_true_random=True))  # uniform over the slots (integers() favours the ends); seeded
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(data)
        leaves = [(p, k) for p, k in slots if isinstance(p[k], (bool, int, float, str))]
        if leaves and draw(st.booleans()):  # half the edits hit a value: past the type checks, into ranges
            slots = leaves
        if not slots:
            return draw(nasty)
        parent, key = rng.choice(slots)
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[key] = draw(st.one_of(_same_kind(parent[key]), nasty))
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "[/]", "Kind", "fx "]))] = draw(nasty)
        else:
            parent.append(draw(nasty))
    return data


def dump_yaml(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True).encode()


def dump_json(data: Any) -> bytes:
    return json.dumps(data).encode()  # NaN/Infinity as JavaScript literals, as Python writes them


@st.composite
def file_bytes(draw, base: Any, dump=dump_yaml) -> bytes:
    """A text file (YAML/JSON/CSV) as the CLI might find it: mostly mutated, sometimes garbage."""
    good = dump(base)
    kind = draw(st.sampled_from(["mutated"] * 6 + ["random", "empty", "truncated", "utf16", "latin1", "nul"]))
    if kind == "mutated":
        return dump(draw(mutated(base)))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=400))
    if kind == "empty":
        return b""
    if kind == "truncated":
        return good[:draw(st.integers(1, max(1, len(good) - 1)))]
    if kind == "utf16":
        return good.decode().encode("utf-16")
    if kind == "latin1":
        return good.decode().replace("a", "ä", 1).encode("latin-1", "replace")
    return good.replace(b"\n", b"\x00\n", 1)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def npz_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=a)
    return buf.getvalue()


def png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@st.composite
def frame_file(draw, good_m: np.ndarray) -> tuple[str, bytes]:
    """(suffix, bytes) of a depth frame: the good one damaged in value, type, shape or encoding."""
    d = good_m.copy()
    kind = draw(st.sampled_from(["values", "values", "dtype", "shape", "npz", "random", "truncated", "png",
                                 "png8", "pickled"]))
    if kind == "values":
        rows = slice(draw(st.integers(0, d.shape[0] - 1)), None)
        d[rows] = draw(st.sampled_from([np.nan, np.inf, -np.inf, -0.7, 0.0, 700.0, 1e30, -1e30]))
        return ".npy", npy_bytes(d)
    if kind == "dtype":
        return ".npy", npy_bytes(d.astype(draw(st.sampled_from([np.float16, np.int32, np.uint16, np.bool_,
                                                                 np.complex64, np.float64]))))
    if kind == "shape":
        shapes = [(0, 0), (1,), (), (d.shape[0], d.shape[1], 3), (d.shape[1], d.shape[0]),
                  (d.shape[0] // 2, d.shape[1])]
        shape = draw(st.sampled_from(shapes))
        return ".npy", npy_bytes(np.resize(d, shape).astype(np.float32))
    if kind == "npz":
        return ".npy", npz_bytes(d)
    if kind == "random":
        return draw(st.sampled_from([".npy", ".png"])), draw(st.binary(min_size=1, max_size=600))
    if kind == "truncated":
        raw = npy_bytes(d)
        return ".npy", raw[:draw(st.integers(1, len(raw) - 1))]
    if kind == "png":
        raw = png_bytes(np.clip(d * 1000, 0, 65535).astype(np.uint16))
        return ".png", raw[:draw(st.sampled_from([len(raw), len(raw) // 2, 60]))]
    if kind == "png8":
        return ".png", png_bytes(np.clip(d * 100, 0, 255).astype(np.uint8))
    return ".npy", npy_bytes(np.array([{"x": 1}], dtype=object))  # needs pickle to load: refused


@st.composite
def weights_file(draw, record: dict) -> bytes:
    """A torch checkpoint: the good record mutated (types, versions, tensors) or raw garbage."""
    import torch

    kind = draw(st.sampled_from(["record", "record", "record", "tensor", "random", "zip", "truncated"]))
    if kind in ("record", "tensor"):
        rec = copy.copy(record)
        rec["state_dict"] = dict(record["state_dict"])
        if kind == "tensor":
            key = draw(st.sampled_from(sorted(rec["state_dict"])))
            t = rec["state_dict"][key]
            rec["state_dict"][key] = draw(st.sampled_from([
                t.flatten(), t.to(torch.int64), t.double().fill_(float("nan")), t.flatten()[:0], "tensor", None]))
        else:
            rec = draw(mutated({k: v for k, v in rec.items() if k != "state_dict"})) | {"state_dict": rec["state_dict"]}
        buf = io.BytesIO()
        torch.save(rec, buf)
        return buf.getvalue()
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=600))
    if kind == "zip":
        return b"PK\x03\x04" + draw(st.binary(max_size=300))
    buf = io.BytesIO()
    torch.save(record, buf)
    raw = buf.getvalue()
    return raw[:draw(st.integers(1, len(raw) - 1))]


def release_json(**gqcnn) -> bytes:
    """config.json of a tiny Berkeley-style GQ-CNN release (stream-form architecture, 8×8 input)."""
    conv = {"type": "conv", "filt_dim": 3, "num_filt": 2, "pool_size": 1, "pool_stride": 1, "pad": "VALID"}
    arch = {"im_stream": {"conv1_1": conv, "fc3": {"type": "fc", "out_size": 4}},
            "pose_stream": {"pc1": {"type": "pc", "out_size": 2}},
            "merge_stream": {"fc4": {"type": "fc_merge", "out_size": 4}, "fc5": {"type": "fc", "out_size": 2}}}
    return json.dumps({"gqcnn": {"im_height": 8, "im_width": 8, "architecture": arch, **gqcnn}}).encode()


def write_tiny_release(folder):
    """A convertible GQ-CNN release folder (config.json, mean/std .npy, weights_npy/) with seeded weights."""
    import torch

    from benchbot.models.gqcnn import GQCNN
    from benchbot.models.weights import release_config, state_dict_to_tf

    (folder / "weights_npy").mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(release_json())
    for name, value in (("im_mean", 0.7), ("im_std", 0.05), ("pose_mean", 0.7), ("pose_std", 0.05)):
        np.save(folder / f"{name}.npy", np.float32(value))
    torch.manual_seed(0)
    for key, arr in state_dict_to_tf(GQCNN(release_config(folder))).items():
        np.save(folder / "weights_npy" / f"{key.replace('/', '__')}.npy", arr)
    return folder
