"""The msgpack subset the sidecar's batched endpoint speaks, in pure Python.

Encodes None, bool, int (-2**63 .. 2**64-1), float (as float64), str,
bytes (bin), list/tuple (array) and dict (map); decodes every msgpack type
but ext. Integers take the smallest encoding, as the specification asks.
"""
from __future__ import annotations

import struct
from typing import Any, List, Tuple

__all__ = ["packb", "unpackb", "MsgpackError"]


class MsgpackError(ValueError):
    """Bytes that are not msgpack this decoder reads."""


def _pack_int(n: int, out: List[bytes]) -> None:
    if 0 <= n <= 0x7F:
        out.append(struct.pack("B", n))
    elif -32 <= n < 0:
        out.append(struct.pack("b", n))
    elif 0 <= n <= 0xFF:
        out.append(b"\xcc" + struct.pack("B", n))
    elif 0 <= n <= 0xFFFF:
        out.append(b"\xcd" + struct.pack(">H", n))
    elif 0 <= n <= 0xFFFFFFFF:
        out.append(b"\xce" + struct.pack(">I", n))
    elif 0 <= n <= 0xFFFFFFFFFFFFFFFF:
        out.append(b"\xcf" + struct.pack(">Q", n))
    elif -0x80 <= n < 0:
        out.append(b"\xd0" + struct.pack("b", n))
    elif -0x8000 <= n < 0:
        out.append(b"\xd1" + struct.pack(">h", n))
    elif -0x80000000 <= n < 0:
        out.append(b"\xd2" + struct.pack(">i", n))
    elif -0x8000000000000000 <= n < 0:
        out.append(b"\xd3" + struct.pack(">q", n))
    else:
        raise OverflowError(f"integer {n} does not fit in 64 bits")


def _pack_len(n: int, fix: int, fix_max: int, codes: Tuple[bytes, bytes, bytes], out: List[bytes]) -> None:
    if n <= fix_max and fix >= 0:
        out.append(struct.pack("B", fix | n))
    elif n <= 0xFF and codes[0]:
        out.append(codes[0] + struct.pack("B", n))
    elif n <= 0xFFFF:
        out.append(codes[1] + struct.pack(">H", n))
    elif n <= 0xFFFFFFFF:
        out.append(codes[2] + struct.pack(">I", n))
    else:
        raise OverflowError("msgpack lengths stop at 2**32 - 1")


def _pack(value: Any, out: List[bytes]) -> None:
    if value is None:
        out.append(b"\xc0")
    elif value is True:
        out.append(b"\xc3")
    elif value is False:
        out.append(b"\xc2")
    elif isinstance(value, int):
        _pack_int(value, out)
    elif isinstance(value, float):
        out.append(b"\xcb" + struct.pack(">d", value))
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _pack_len(len(data), 0xA0, 31, (b"\xd9", b"\xda", b"\xdb"), out)
        out.append(data)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        _pack_len(len(data), -1, -1, (b"\xc4", b"\xc5", b"\xc6"), out)
        out.append(data)
    elif isinstance(value, (list, tuple)):
        _pack_len(len(value), 0x90, 15, (b"", b"\xdc", b"\xdd"), out)
        for item in value:
            _pack(item, out)
    elif isinstance(value, dict):
        _pack_len(len(value), 0x80, 15, (b"", b"\xde", b"\xdf"), out)
        for key, item in value.items():
            _pack(key, out)
            _pack(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as msgpack")


def packb(value: Any) -> bytes:
    """The msgpack bytes of `value`."""
    out: List[bytes] = []
    _pack(value, out)
    return b"".join(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MsgpackError(f"truncated: {n} bytes wanted at offset {self.pos}, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n].tobytes()
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self) -> Any:
        code = self.unpack("B")
        if code <= 0x7F:
            return code
        if code >= 0xE0:
            return code - 0x100
        if 0x80 <= code <= 0x8F:
            return self.map(code & 0x0F)
        if 0x90 <= code <= 0x9F:
            return self.array(code & 0x0F)
        if 0xA0 <= code <= 0xBF:
            return self.str(code & 0x1F)
        simple = {
            0xC0: lambda: None,
            0xC2: lambda: False,
            0xC3: lambda: True,
            0xC4: lambda: self.take(self.unpack("B")),
            0xC5: lambda: self.take(self.unpack(">H")),
            0xC6: lambda: self.take(self.unpack(">I")),
            0xCA: lambda: self.unpack(">f"),
            0xCB: lambda: self.unpack(">d"),
            0xCC: lambda: self.unpack("B"),
            0xCD: lambda: self.unpack(">H"),
            0xCE: lambda: self.unpack(">I"),
            0xCF: lambda: self.unpack(">Q"),
            0xD0: lambda: self.unpack("b"),
            0xD1: lambda: self.unpack(">h"),
            0xD2: lambda: self.unpack(">i"),
            0xD3: lambda: self.unpack(">q"),
            0xD9: lambda: self.str(self.unpack("B")),
            0xDA: lambda: self.str(self.unpack(">H")),
            0xDB: lambda: self.str(self.unpack(">I")),
            0xDC: lambda: self.array(self.unpack(">H")),
            0xDD: lambda: self.array(self.unpack(">I")),
            0xDE: lambda: self.map(self.unpack(">H")),
            0xDF: lambda: self.map(self.unpack(">I")),
        }
        read = simple.get(code)
        if read is None:
            raise MsgpackError(f"unsupported msgpack type 0x{code:02x} at offset {self.pos - 1}")
        return read()

    def str(self, n: int) -> str:
        return self.take(n).decode("utf-8")

    def array(self, n: int) -> List[Any]:
        return [self.value() for _ in range(n)]

    def map(self, n: int) -> dict:
        out = {}
        for _ in range(n):
            key = self.value()
            out[key] = self.value()
        return out


def unpackb(data: bytes) -> Any:
    """The value msgpack `data` holds; MsgpackError when malformed or followed by extra bytes."""
    reader = _Reader(data)
    value = reader.value()
    if reader.pos != len(data):
        raise MsgpackError(f"{len(data) - reader.pos} extra bytes after the value")
    return value
