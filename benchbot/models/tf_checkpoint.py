"""Pure-Python reader for TensorFlow checkpoints (no TensorFlow needed).

V2 ("tensor bundle", TF >= 0.12): `<prefix>.index` is an SSTable (LevelDB table format) mapping
tensor names to `BundleEntryProto`s (dtype, shape, shard, offset, size, crc32c); the tensors are raw
little-endian bytes in `<prefix>.data-SSSSS-of-NNNNN`. The empty key holds a `BundleHeaderProto`. Each tensor's masked
CRC-32C is checked.

V1 (TF < 1.0, e.g. Berkeley's GQCNN-2.0 release: one `model.ckpt` file) is the same SSTable
format holding `SavedTensorSlices` protos: the empty key has the metadata (names, shapes, dtypes),
the other entries carry `SavedSlice`s whose `TensorProto` has the values (packed `float_val`
etc. or `tensor_content`).

Only what GQ-CNN releases need is implemented: uncompressed tables (what TF writes), numeric
dtypes. Anything else raises `CheckpointError` with a one-line reason.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from benchbot.core.errors import BenchbotError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_LEN = 48
# tensorflow/core/framework/types.proto → numpy (little-endian)
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2",
          19: "<f2", 22: "<u4", 23: "<u8"}


class CheckpointError(BenchbotError):
    """A checkpoint file that cannot be read (missing, truncated, corrupt or unsupported)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "re-download the model release (model.ckpt.index + model.ckpt.data-*)")


# --- protobuf wire format -------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("malformed varint in checkpoint index")


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Decode one protobuf message into (field number, wire type, value) triples."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        val: int | bytes
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wt} in checkpoint index")
        if pos > len(buf):
            raise CheckpointError("truncated protobuf message in checkpoint index")
        out.append((num, wt, val))
    return out


def _msg(val: int | bytes) -> bytes:
    """A length-delimited field's bytes (a number there: a corrupt index)."""
    if not isinstance(val, bytes):
        raise CheckpointError("corrupt checkpoint index: a number where a message belongs")
    return val


def _num(val: int | bytes) -> int:
    """A numeric field's value (bytes there: a corrupt index)."""
    if not isinstance(val, int):
        raise CheckpointError("corrupt checkpoint index: bytes where a number belongs")
    return val


# --- CRC-32C (Castagnoli), as TF stores it (masked) -------------------------------------------

_CRC_POLY = 0x82F63B78


def _crc_table() -> np.ndarray:
    t = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC_POLY if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _crc_table()


def _crc_update(data: bytes, reg: int) -> int:
    for b in data:
        reg = int(_CRC_TABLE[(reg ^ b) & 0xFF]) ^ (reg >> 8)
    return reg


def crc32c(data: bytes, lanes: int = 1024) -> int:
    """CRC-32C of `data`. Large buffers are split into `lanes` chunks processed side by side with
    numpy; the chunk registers are then chained (the CRC register update is linear over GF(2))."""
    chunk = len(data) // lanes
    if chunk < 64:
        return _crc_update(data, 0xFFFFFFFF) ^ 0xFFFFFFFF
    cols = np.frombuffer(data, np.uint8, count=chunk * lanes).reshape(lanes, chunk).T.astype(np.uint32)
    regs = np.zeros(lanes, np.uint32)
    regs[0] = 0xFFFFFFFF
    for j in range(chunk):
        regs = _CRC_TABLE[(regs ^ cols[j]) & 0xFF] ^ (regs >> 8)
    zero = np.uint32(1) << np.arange(32, dtype=np.uint32)  # basis vectors pushed through `chunk` zero bytes
    for _ in range(chunk):
        zero = _CRC_TABLE[zero & 0xFF] ^ (zero >> 8)
    cols_z = [int(v) for v in zero]
    reg = int(regs[0])
    for r in regs[1:]:
        nxt = 0
        for bit in range(32):
            if reg >> bit & 1:
                nxt ^= cols_z[bit]
        reg = nxt ^ int(r)
    return _crc_update(data[chunk * lanes:], reg) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- SSTable --------------------------------------------------------------------------------

def _block(data: bytes, offset: int, size: int) -> bytes:
    if offset + size + 5 > len(data):
        raise CheckpointError("checkpoint index is truncated (block past end of file)")
    if data[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    return data[offset:offset + size]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError("corrupt checkpoint index block")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise CheckpointError("corrupt checkpoint index block (restart array)")
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > end:
            raise CheckpointError("corrupt checkpoint index entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + vlen]))
        pos += vlen
    return entries


def read_sstable(path: Path) -> dict[bytes, bytes]:
    """All key → value pairs of an uncompressed LevelDB-format table."""
    data = path.read_bytes()
    if len(data) < FOOTER_LEN or int.from_bytes(data[-8:], "little") != TABLE_MAGIC:
        raise CheckpointError(f"{path.name} is not a TensorFlow checkpoint index (bad magic / truncated)")
    footer = data[-FOOTER_LEN:]
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)
    table: dict[bytes, bytes] = {}
    for _, handle in _block_entries(_block(data, idx_off, idx_size)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        table.update(_block_entries(_block(data, off, size)))
    return table


# --- tensor bundle --------------------------------------------------------------------------

def _shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for num, _, val in _fields(buf):
        if num == 2:  # Dim
            size = next((v for n, _, v in _fields(_msg(val)) if n == 1), 0)
            dims.append(_num(size))
        elif num == 3 and val:
            raise CheckpointError("tensor with unknown rank in checkpoint")
    return tuple(dims)


MAX_TENSOR_BYTES = 1 << 31  # GQ-CNN tensors are MBs; a larger shape means a corrupt index


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint → name → array. `prefix` is the path without `.index` (V2), or
    the single checkpoint file (V1). Anything malformed → CheckpointError (one line)."""
    try:
        return _read_checkpoint(Path(prefix))
    except CheckpointError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, MemoryError, struct.error) as exc:
        # the index decoded into values of the wrong kind (e.g. a number where a message belongs)
        raise CheckpointError(f"{Path(prefix).name}: corrupt checkpoint ({type(exc).__name__}: {exc!s:.80})") from None
    except OSError as exc:
        raise CheckpointError(f"{Path(prefix).name}: cannot be read ({exc.strerror or exc})") from None


def _size_checked(name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * dtype.itemsize > MAX_TENSOR_BYTES or any(d < 0 for d in shape):
        raise CheckpointError(f"tensor {name} claims shape {shape}: not a GQ-CNN checkpoint (corrupt index?)")
    return count


def _read_checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        if prefix.is_file():
            return read_checkpoint_v1(prefix)
        raise CheckpointError(f"checkpoint index not found: {index}")
    table = read_sstable(index)
    num_shards = 1
    if b"" in table:
        for num, _, val in _fields(table[b""]):
            if num == 1:
                num_shards = _num(val)
            elif num == 2 and val != 0:
                raise CheckpointError("big-endian checkpoints are not supported")
    shards: dict[int, bytes] = {}
    tensors: dict[str, np.ndarray] = {}
    for key, value in table.items():
        if key == b"":
            continue
        name = key.decode("utf-8", "replace")
        dtype, shard, offset, size = 0, 0, 0, 0
        shape: tuple[int, ...] = ()
        crc: int | None = None
        for num, _, val in _fields(value):
            if num == 1:
                dtype = _num(val)
            elif num == 2:
                shape = _shape(_msg(val))
            elif num == 3:
                shard = _num(val)
            elif num == 4:
                offset = _num(val)
            elif num == 5:
                size = _num(val)
            elif num == 6:
                crc = _num(val)
            elif num == 7:
                raise CheckpointError(f"partitioned tensor {name} is not supported")
        if dtype not in DTYPES:
            raise CheckpointError(f"tensor {name} has unsupported dtype code {dtype}")
        if shard not in shards:
            path = prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")
            if not path.is_file():
                raise CheckpointError(f"checkpoint data file not found: {path.name}")
            shards[shard] = path.read_bytes()
        blob = shards[shard]
        dt = np.dtype(DTYPES[dtype])
        count = _size_checked(name, shape, dt)
        if size != count * dt.itemsize:
            raise CheckpointError(f"tensor {name}: {size} bytes recorded for shape {shape}")
        if offset + size > len(blob):
            raise CheckpointError(f"checkpoint data file is truncated (tensor {name})")
        if crc is not None and masked_crc32c(blob[offset:offset + size]) != crc:
            raise CheckpointError(f"checksum mismatch for tensor {name}: the checkpoint data file is corrupt")
        raw = np.frombuffer(blob, dtype=dt, count=count, offset=offset)
        tensors[name] = raw.reshape(shape).astype(dt.newbyteorder("="))
    return tensors


# --- V1 (tensor slices) ---------------------------------------------------------------------

# TensorProto value fields → (numpy dtype, packed element size or 0 for varints)
_VALUE_FIELDS = {5: ("<f4", 4), 6: ("<f8", 8), 7: ("<i8", 0), 10: ("<i8", 0), 11: ("<i8", 0), 13: ("<i8", 0)}


def _tensor_proto_values(buf: bytes, dtype: np.dtype, count: int) -> np.ndarray:
    content: bytes | None = None
    values: list[np.ndarray] = []
    for num, wt, val in _fields(buf):
        if num == 4:
            content = _msg(val)
        elif num in _VALUE_FIELDS:
            np_dt, size = _VALUE_FIELDS[num]
            if wt == 2 and size:  # packed fixed-width
                values.append(np.frombuffer(_msg(val), dtype=np_dt))
            elif wt == 2:  # packed varints
                packed, pos, ints = _msg(val), 0, []
                while pos < len(packed):
                    v, pos = _varint(packed, pos)
                    ints.append(v - (1 << 64) if v >= 1 << 63 else v)
                values.append(np.array(ints, dtype=np_dt))
            elif wt == 5:
                values.append(np.frombuffer(_num(val).to_bytes(4, "little"), dtype="<f4"))
            elif wt == 1:
                values.append(np.frombuffer(_num(val).to_bytes(8, "little"), dtype="<f8"))
            else:
                n = _num(val)
                values.append(np.array([n - (1 << 64) if n >= 1 << 63 else n], dtype=np_dt))
    if content is not None:
        if len(content) != count * dtype.itemsize:
            raise CheckpointError("tensor_content size does not match the tensor shape")
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype)
    flat = np.concatenate(values) if values else np.zeros(0, dtype)
    if flat.size == 1 and count > 1:  # TF stores constant tensors as one value
        flat = np.repeat(flat, count)
    if flat.size != count:
        raise CheckpointError(f"tensor slice holds {flat.size} values, expected {count}")
    return flat.astype(dtype)


def _slice_extents(buf: bytes, shape: tuple[int, ...]) -> tuple[slice, ...]:
    extents = [_msg(val) for num, _, val in _fields(buf) if num == 1]
    if not extents:
        return tuple(slice(0, d) for d in shape)
    if len(extents) != len(shape):
        raise CheckpointError("tensor slice rank does not match the tensor shape")
    out = []
    for ext, dim in zip(extents, shape, strict=True):
        f = {num: val for num, _, val in _fields(ext)}
        start = _num(f.get(1, 0))
        length = _num(f[2]) if 2 in f else dim - start
        out.append(slice(start, start + length))
    return tuple(out)


def read_checkpoint_v1(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a V1 (tensor-slice) checkpoint file → name → array."""
    table = read_sstable(Path(path))
    if b"" not in table:
        raise CheckpointError(f"{Path(path).name} has no checkpoint metadata")
    meta: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for num, _, val in _fields(table[b""]):
        if num != 1:
            continue
        for tnum, _, tval in _fields(_msg(val)):
            if tnum != 1:
                continue
            f = {n: v for n, _, v in _fields(_msg(tval))}
            name = _msg(f.get(1, b"")).decode("utf-8", "replace")
            code = _num(f.get(3, 0))
            if code not in DTYPES:
                raise CheckpointError(f"tensor {name} has unsupported dtype code {code}")
            meta[name] = (_shape(_msg(f.get(2, b""))), np.dtype(DTYPES[code]))
            _size_checked(name, *meta[name])
    out = {name: np.zeros(shape, dtype) for name, (shape, dtype) in meta.items()}
    filled = {name: 0 for name in meta}
    for key, value in table.items():
        if key == b"":
            continue
        for num, _, val in _fields(value):
            if num != 2:
                continue
            f = {n: v for n, _, v in _fields(_msg(val))}
            name = _msg(f.get(1, b"")).decode("utf-8", "replace")
            if name not in meta:
                raise CheckpointError(f"tensor slice for unknown tensor {name}")
            shape, dtype = meta[name]
            region = _slice_extents(_msg(f.get(2, b"")), shape)
            sub = tuple(s.stop - s.start for s in region)
            count = int(np.prod(sub)) if sub else 1
            out[name][region] = _tensor_proto_values(_msg(f.get(3, b"")), dtype, count).reshape(sub)
            filled[name] += count
    missing = [n for n, (shape, _) in meta.items() if filled[n] < (int(np.prod(shape)) if shape else 1)]
    if missing:
        raise CheckpointError(f"checkpoint lacks data for {missing[0]} (truncated?)")
    return out
