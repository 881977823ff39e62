"""The msgpack subset against the specification's byte layouts (and the msgpack package when installed)."""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cachesage_client.msgpack import MsgpackError, packb, unpackb  # noqa: E402


class MsgpackTest(unittest.TestCase):
    def test_integers_take_the_smallest_encoding(self) -> None:
        cases = {
            0: b"\x00", 127: b"\x7f", 128: b"\xcc\x80", 256: b"\xcd\x01\x00", 65536: b"\xce\x00\x01\x00\x00",
            2**32: b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 2**64 - 1: b"\xcf" + b"\xff" * 8,
            -1: b"\xff", -32: b"\xe0", -33: b"\xd0\xdf", -129: b"\xd1\xff\x7f", -(2**63): b"\xd3\x80" + b"\x00" * 7,
        }
        for value, encoded in cases.items():
            with self.subTest(value=value):
                self.assertEqual(packb(value), encoded)
                self.assertEqual(unpackb(encoded), value)

    def test_strings_bins_arrays_maps(self) -> None:
        self.assertEqual(packb("abc"), b"\xa3abc")
        self.assertEqual(packb("x" * 32), b"\xd9\x20" + b"x" * 32)
        self.assertEqual(packb(b"\x01\x02"), b"\xc4\x02\x01\x02")
        self.assertEqual(packb([1, [2]]), b"\x92\x01\x91\x02")
        self.assertEqual(packb(list(range(16)))[:3], b"\xdc\x00\x10")
        self.assertEqual(packb({"a": None}), b"\x81\xa1a\xc0")
        self.assertEqual(packb(1.5), b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00")
        self.assertEqual(unpackb(b"\xca\x3f\xc0\x00\x00"), 1.5)

    def test_refuses_what_it_cannot_read(self) -> None:
        with self.assertRaises(MsgpackError):
            unpackb(b"\xc1")
        with self.assertRaises(MsgpackError):
            unpackb(b"\x92\x01")
        with self.assertRaises(MsgpackError):
            unpackb(b"\x01\x02")
        with self.assertRaises(OverflowError):
            packb(2**64)
        with self.assertRaises(TypeError):
            packb(object())

    def test_round_trips_random_values(self) -> None:
        rng = random.Random(5)

        def value(depth: int):
            kind = rng.randrange(8 if depth < 3 else 6)
            if kind == 0:
                return rng.randrange(-(2**63), 2**64)
            if kind == 1:
                return rng.random() * 1e6
            if kind == 2:
                return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(0, 300)))
            if kind == 3:
                return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            if kind == 4:
                return rng.choice([None, True, False])
            if kind == 5:
                return rng.randrange(-40, 300)
            if kind == 6:
                return [value(depth + 1) for _ in range(rng.randrange(0, 20))]
            return {f"k{i}": value(depth + 1) for i in range(rng.randrange(0, 20))}

        for _ in range(300):
            v = value(0)
            self.assertEqual(unpackb(packb(v)), v)

    def test_agrees_with_the_msgpack_package(self) -> None:
        try:
            import msgpack  # type: ignore
        except ImportError:
            self.skipTest("the msgpack package is not installed")
        rng = random.Random(9)
        for _ in range(200):
            v = [rng.randrange(-(2**63), 2**64), "s" * rng.randrange(70000 if rng.random() < 0.05 else 40),
                 bytes(rng.randrange(300)), {"x": [1.25, None]}, rng.randrange(-40, 70000)]
            self.assertEqual(packb(v), msgpack.packb(v, use_bin_type=True))
            self.assertEqual(unpackb(msgpack.packb(v, use_bin_type=True)), v)


if __name__ == "__main__":
    unittest.main()
