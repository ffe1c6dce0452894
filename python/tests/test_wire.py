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
from pointstream.wire import (
    Payload,
    as_frame,
    as_points,
    chunk_count,
    chunks,
    npy_header,
    read_npy,
    remote_max_message_size,
)


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
            (np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")]), "PS_ERR_INVALID_FRAME"),
        ]:
            with self.assertRaises(PointstreamError) as raised:
                as_points(bad)
            self.assertEqual(raised.exception.code, code)

    def test_field_table_of_the_protocol_example(self) -> None:
        # docs/protocol.md, "Per-point fields": frame 7, 2 points, fields intensity (f32) and ring (u16).
        frame = as_frame(
            np.array([[1, 2, 3], [4, 5, 6]], dtype="<f4"),
            {"intensity": np.array([0.5, 1.5], dtype="<f4"), "ring": np.array([3, 4], dtype="<u2")},
        )
        payload = Payload.of_frame(frame)
        self.assertEqual(
            payload.table.hex(" "),
            "98 00 00 00  02 00 00 00"
            "  01 00 09 00  08 00 00 00  00 00 00 00 00 00 00 00"
            "  69 6e 74 65 6e 73 69 74 79"
            "  03 00 04 00  04 00 00 00  00 00 00 00 00 00 00 00"
            "  72 69 6e 67".replace("  ", " "),
        )
        self.assertEqual(len(payload.data), 164)
        self.assertEqual(payload.data[:152], Payload.of(frame.points).data)
        self.assertEqual(payload.data[152:160], np.array([0.5, 1.5], "<f4").tobytes())
        self.assertEqual(payload.data[160:], np.array([3, 4], "<u2").tobytes())
        self.assertEqual(payload.crc32, zlib.crc32(payload.data))
        messages = list(chunks(payload, 7, 1.5, 93 + 140))  # START: 140 payload bytes, DATA: 24
        self.assertEqual([len(m) for m in messages], [233, 12 + 24])
        start = messages[0]
        self.assertEqual(start[:4].hex(), "01015d00")  # headerLength 93
        self.assertEqual(start[12:16], struct.pack("<I", 164))
        self.assertEqual(start[24:28].hex(), "01030101")  # f32, 3, .npy, flags 0x01
        self.assertEqual(start[36:40], struct.pack("<I", 2))
        self.assertEqual(start[40:93], payload.table)
        self.assertEqual(start[93:] + messages[1][12:], payload.data)

    def test_columns_are_padded_to_8_bytes(self) -> None:
        points = np.zeros((3, 3), "<f4")  # 128 + 36 = 164: the first column starts at 168
        frame = as_frame(points, {"ring": np.array([1, 2, 3], "u2"), "time": np.array([1.0, 2.0, 3.0])})
        payload = Payload.of_frame(frame)
        self.assertEqual(payload.data[164:168], bytes(4))
        self.assertEqual(payload.data[168:174], np.array([1, 2, 3], "<u2").tobytes())
        self.assertEqual(payload.data[176:], np.array([1.0, 2.0, 3.0], "<f8").tobytes())  # 174 -> 176
        self.assertEqual(len(payload.data), 200)

    def test_structured_arrays_and_conversions(self) -> None:
        records = np.zeros(
            (2, 2), dtype=[("z", ">f8"), ("x", "<i4"), ("y", "f4"), ("valid", "?"), ("ring", ">u2"), ("t", "<f8")]
        )
        records["x"] = [[1, 2], [3, 4]]
        records["z"] = 9
        records["valid"] = [[True, False], [True, True]]
        records["ring"] = [[1, 2], [3, 258]]
        frame = as_frame(records)
        self.assertEqual(frame.points.dtype.str, "<f4")
        self.assertEqual(frame.points[:, 0].tolist(), [1, 2, 3, 4])
        self.assertEqual(frame.points[:, 2].tolist(), [9, 9, 9, 9])
        self.assertEqual([(n, c.dtype.str) for n, c in frame.fields], [("valid", "|u1"), ("ring", "<u2"), ("t", "<f8")])
        self.assertEqual(frame.fields[1][1].tolist(), [1, 2, 3, 258])
        # The plain form: one structured .npy, x, y, z '<f4' first.
        plain = read_npy(Payload.of_frame(frame, plain=True).data)
        self.assertEqual(plain.dtype.names, ("x", "y", "z", "valid", "ring", "t"))
        self.assertEqual(plain.dtype["x"].str, "<f4")
        self.assertEqual(plain["ring"].tolist(), [1, 2, 3, 258])
        self.assertEqual(Payload.of_frame(frame, plain=True).field_count, 3)
        # Without fields, the plain form is the (N, 3) .npy of before.
        self.assertEqual(Payload.of_frame(as_frame(np.ones((2, 3))), plain=True).data, Payload.of(np.ones((2, 3), "<f4")).data)

    def test_bad_fields_are_refused(self) -> None:
        points = np.zeros((2, 3))
        for fields, code in [
            ({"1st": np.zeros(2)}, "PS_ERR_FIELDS_INVALID"),
            ({"x": np.zeros(2)}, "PS_ERR_FIELDS_INVALID"),
            ({"a-b": np.zeros(2)}, "PS_ERR_FIELDS_INVALID"),
            ({"": np.zeros(2)}, "PS_ERR_FIELDS_INVALID"),
            ({"n" * 65: np.zeros(2)}, "PS_ERR_FIELDS_INVALID"),
            ({"half": np.zeros(2, "f2")}, "PS_ERR_FIELDS_INVALID"),
            ({"big": np.zeros(2, "u8")}, "PS_ERR_FIELDS_INVALID"),
            ({"name": np.array(["a", "b"])}, "PS_ERR_FIELDS_INVALID"),
            ({"short": np.zeros(3)}, "PS_ERR_FIELDS_INVALID"),
            ({f"f{i}": np.zeros(2) for i in range(33)}, "PS_ERR_FIELDS_INVALID"),
        ]:
            with self.assertRaises(PointstreamError) as raised:
                as_frame(points, fields)
            self.assertEqual(raised.exception.code, code, fields.keys())
        self.assertEqual(len(as_frame(points, {"n" * 64: np.zeros(2), "_0": np.zeros(2)}).fields), 2)
        self.assertEqual(len(as_frame(points, {f"f{i}": np.zeros(2) for i in range(32)}).fields), 32)
        for bad, code in [
            (np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4")]), "PS_ERR_INVALID_FRAME"),
            (np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("c", "c16")]), "PS_ERR_FIELDS_INVALID"),
        ]:
            with self.assertRaises(PointstreamError) as raised:
                as_frame(bad)
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
