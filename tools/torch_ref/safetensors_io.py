"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Layout: u64 little-endian header length N, N bytes of JSON
  {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
padded with spaces so the data section starts 8-byte aligned, then the raw little-endian data
(offsets are relative to the start of the data section).

Supported dtypes: F32, F16, BF16, I32, I64, F8_E4M3. torch 1.13 has no float8, so F8_E4M3 is
decoded to float32 on read (256-entry table) and encoded from float32 on write.
"""
import json
import math
import struct

import numpy as np
import torch

_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I32": torch.int32, "I64": torch.int64}
_NAME = {v: k for k, v in _TORCH.items()}
_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "F8_E4M3": 1}


def _e4m3_value(code):
    """float value of an FP8 E4M3 (fn variant: bias 7, no inf, S.1111.111 = NaN)."""
    sign = -1.0 if code & 0x80 else 1.0
    e, m = (code >> 3) & 0xF, code & 0x7
    if e == 0xF and m == 0x7:
        return math.nan
    if e == 0:
        return sign * (m / 8.0) * 2.0 ** -6          # subnormal
    return sign * (1.0 + m / 8.0) * 2.0 ** (e - 7)


E4M3_TABLE = torch.tensor([_e4m3_value(c) for c in range(256)], dtype=torch.float32)
_E4M3_POS = E4M3_TABLE[:0x7F].double()               # codes 0..126: increasing, 0 .. 448


def e4m3_decode(u8):
    return E4M3_TABLE[u8.long()]


def e4m3_encode(x):
    """float -> E4M3 code (uint8), round to nearest, ties to even mantissa, saturate at 448."""
    x = x.double()
    a = x.abs().clamp(max=448.0)
    hi = torch.searchsorted(_E4M3_POS, a).clamp(max=0x7E)      # first code with value >= a
    lo = (hi - 1).clamp(min=0)
    d_hi, d_lo = _E4M3_POS[hi] - a, a - _E4M3_POS[lo]
    pick_lo = (d_lo < d_hi) | ((d_lo == d_hi) & (lo % 2 == 0))
    code = torch.where(pick_lo, lo, hi)
    code = code | ((x < 0) & (code != 0)).long() << 7
    code = torch.where(torch.isnan(x), torch.full_like(code, 0x7F), code)
    return code.to(torch.uint8)


class Fp8(object):
    """Marks a float tensor to be written as F8_E4M3 (values are rounded to E4M3)."""
    def __init__(self, t):
        self.t = t


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header, 8 + n


def load_file(path, keep_dtype=True):
    """-> (dict name -> torch tensor, metadata dict). F8_E4M3 comes back as float32;
    with keep_dtype=False every float tensor is converted to float32."""
    header, start = read_header(path)
    meta = header.pop("__metadata__", {}) or {}
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt, shape = info["dtype"], info["shape"]
        n = int(np.prod(shape)) if shape else 1
        if e - b != n * _SIZE[dt]:
            raise ValueError("%s: %d bytes for %s %s" % (name, e - b, dt, shape))
        raw = bytearray(data[b:e])                         # own copy, writable
        if dt == "F8_E4M3":
            t = e4m3_decode(torch.frombuffer(raw, dtype=torch.uint8) if n else torch.zeros(0, dtype=torch.uint8))
        elif n == 0:
            t = torch.zeros(0, dtype=_TORCH[dt])
        else:
            t = torch.frombuffer(raw, dtype=_TORCH[dt])
        t = t.reshape(shape)
        if not keep_dtype and t.is_floating_point():
            t = t.float()
        out[name] = t
    return out, meta


def save_file(tensors, path, metadata=None):
    """tensors: dict name -> torch tensor (F32/F16/BF16/I32/I64) or Fp8(tensor)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        if isinstance(t, Fp8):
            dt, shape = "F8_E4M3", list(t.t.shape)
            raw = e4m3_encode(t.t.detach().cpu()).numpy().tobytes()
        else:
            t = t.detach().cpu().contiguous()
            dt, shape = _NAME[t.dtype], list(t.shape)
            if t.dtype == torch.bfloat16:
                raw = t.view(torch.int16).numpy().tobytes()
            else:
                raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)              # data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for raw in blobs:
            f.write(raw)


def fp8_block_quantize(w, block=128):
    """Float weight [out, in] -> (Fp8 weight, F32 scale_inv [ceil(out/128), ceil(in/128)]) such that
    dequantised = e4m3(w / s) * s per 128x128 block, s = amax / 448."""
    o, i = w.shape
    so, si = -(-o // block), -(-i // block)
    pad = torch.zeros(so * block, si * block, dtype=torch.float32)
    pad[:o, :i] = w.float()
    amax = pad.view(so, block, si, block).abs().amax(dim=(1, 3))
    s = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = w.float() / s.repeat_interleave(block, 0).repeat_interleave(block, 1)[:o, :i]
    return Fp8(q), s


def fp8_dequantize(w, scale_inv, block=128):
    """w (decoded E4M3 float) * scale_inv broadcast over 128x128 blocks."""
    o, i = w.shape
    s = scale_inv.float().repeat_interleave(block, 0).repeat_interleave(block, 1)[:o, :i]
    return w.float() * s
