"""Unit tests of the package's pure parts (no network): python3 -m unittest discover -s python/tests"""

import io
import json
import struct
import unittest
import zlib

import numpy as np

from pointstream import PointstreamError
from pointstream.http import base_url
from pointstream.live import frames as _frames  # noqa: F401 (imported: the module loads)
from pointstream.live import _read_exactly
from pointstream.wire import Payload, as_points, chunk_count, chunks, npy_header, remote_max_message_size


class WireTest(unittest.TestCase):
    def test_payload_is_numpy_save_and_its_crc(self) -> None:
        points = np.arange(30, dtype="<f4").reshape(10, 3)
        saved = io.BytesIO()
        np.save(saved, points)
        payload = Payload.of(points)
        self.assertEqual(payload.data, saved.getvalue())
        self.assertEqual(payload.crc32, zlib.crc32(saved.getvalue()))
        self.assertEqual(len(npy_header(1_000_000)), 128)

    def test_chunk_count_of_the_protocol_example(self) -> None:
        # docs/protocol.md: 1,000,000 points, 262,144-byte messages: a 12,000,128-byte payload in 46 chunks.
        self.assertEqual(chunk_count(12_000_128, 262_144), 46)
        self.assertEqual(chunk_count(262_144 - 40, 262_144), 1)
        self.assertEqual(chunk_count(262_144 - 39, 262_144), 2)

    def test_start_and_data_headers_byte_for_byte(self) -> None:
        points = np.array([[1, 2, 3], [4, 5, 6]], dtype="<f4")
        payload = Payload.of(points)  # 128 + 24 bytes
        messages = list(chunks(payload, 7, 1.5, 180))  # START: 140 payload bytes, DATA: the last 12
        self.assertEqual([len(m) for m in messages], [180, 12 + 12])
        start = messages[0][:40]
        self.assertEqual(
            start.hex(),
            "01012800" "07000000" "00000000" "98000000" "02000000"
            + struct.pack("<I", payload.crc32).hex()
            + "01030100" "000000000000f83f" "02000000",
        )
        self.assertEqual(messages[1][:12].hex(), "0102" "0c00" "07000000" "01000000")
        self.assertEqual(messages[0][40:] + messages[1][12:], payload.data)

    def test_as_points_converts_and_refuses(self) -> None:
        self.assertEqual(as_points(np.zeros((4, 3))).dtype.str, "<f4")
        self.assertEqual(as_points([[1, 2, 3]]).shape, (1, 3))
        for bad, code in [
            (np.zeros((4, 2)), "PS_ERR_INVALID_FRAME"),
            (np.zeros(3), "PS_ERR_INVALID_FRAME"),
            (np.array([["a", "b", "c"]]), "PS_ERR_INVALID_FRAME"),
            (np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")]), "PS_ERR_FIELDS_UNSUPPORTED"),
        ]:
            with self.assertRaises(PointstreamError) as raised:
                as_points(bad)
            self.assertEqual(raised.exception.code, code)

    def test_remote_max_message_size(self) -> None:
        self.assertEqual(remote_max_message_size("v=0\r\na=max-message-size:262144\r\n"), 262_144)
        self.assertEqual(remote_max_message_size("v=0\r\n"), 65_536)

    def test_base_url(self) -> None:
        self.assertEqual(base_url("http://h:8080/offer"), "http://h:8080")
        self.assertEqual(base_url("https://h/p/offer/"), "https://h/p")
        with self.assertRaises(PointstreamError) as raised:
            base_url("ftp://h")
        self.assertEqual(raised.exception.code, "PS_ERR_INVALID_OPTION")

    def test_records_read_across_short_reads(self) -> None:
        meta = json.dumps({"type": "keepalive"}).encode()
        stream = io.BytesIO(struct.pack("<I", len(meta)) + meta)

        class Trickle:
            def read(self, n: int) -> bytes:
                return stream.read(min(n, 3))

        size = _read_exactly(Trickle(), 4)
        self.assertEqual(struct.unpack("<I", size or b"")[0], len(meta))
        self.assertEqual(_read_exactly(Trickle(), len(meta)), meta)
        self.assertIsNone(_read_exactly(Trickle(), 1))

    def test_errors_carry_their_code(self) -> None:
        error = PointstreamError("PS_ERR_FRAME_LOST", "lost", {"seq": 3})
        self.assertEqual(error.to_dict(), {"code": "PS_ERR_FRAME_LOST", "message": "lost", "details": {"seq": 3}})
        self.assertTrue(str(error).endswith("(PS_ERR_FRAME_LOST)"))


if __name__ == "__main__":
    unittest.main()
