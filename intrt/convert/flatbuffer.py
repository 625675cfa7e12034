"""A small, bounds-checked reader of the FlatBuffers binary format (no dependency on ``flatbuffers``).

Enough of the format to read a TFLite model, written from the public format description
(https://flatbuffers.dev/internals/). Everything is little-endian:

* The buffer starts with a ``uoffset`` (uint32) to the root table; a 4-byte file identifier may
  follow it (TFLite: ``b"TFL3"``).
* A table at position ``t`` starts with an ``soffset`` (int32); its vtable is at ``t - soffset``.
  The vtable holds ``uint16 vtable_size, uint16 table_size`` and then one ``uint16`` per field: the
  field's offset from ``t``, or 0 when the field is absent (the schema default applies).
* A reference field (table, vector, string) stores a ``uoffset`` relative to the field's own
  position. A vector is a ``uint32`` length followed by its elements; a vector of tables holds one
  ``uoffset`` per element, each relative to the element's position. A string is a vector of bytes
  (followed by a NUL that we do not need).
* A union occupies two fields: a ``uint8`` type (0 = NONE) and a reference to the value table.
* Structs are stored inline (in a table field or in a vector), with a fixed layout.

Every position is checked against the buffer length before it is read; anything malformed raises
:class:`~intrt.errors.ConversionError` naming what was being read. Nothing here can crash the
interpreter or allocate more than the buffer's size.
"""
from __future__ import annotations

import struct
from typing import List, Optional, Tuple

import numpy as np

from intrt.errors import ConversionError

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")

#: Scalar formats by schema type name.
SCALARS = {
    "bool": "<?", "byte": "<b", "ubyte": "<B", "short": "<h", "ushort": "<H", "int": "<i", "uint": "<I",
    "long": "<q", "ulong": "<Q", "float": "<f", "double": "<d",
}
_NUMPY = {
    "bool": "u1", "byte": "<i1", "ubyte": "<u1", "short": "<i2", "ushort": "<u2", "int": "<i4", "uint": "<u4",
    "long": "<i8", "ulong": "<u8", "float": "<f4", "double": "<f8",
}


class FlatBuffer:
    """A read-only byte buffer with checked reads. ``what`` names the file in error messages."""

    def __init__(self, data, what: str = "flatbuffer"):
        if isinstance(data, memoryview):
            data = data.tobytes()
        if not isinstance(data, (bytes, bytearray)):
            raise ConversionError(f"{what}: expected bytes, got {type(data).__name__}")
        self.data = bytes(data)
        self.what = what

    def __len__(self):
        return len(self.data)

    def check(self, pos: int, size: int, context: str) -> None:
        """Raise unless ``[pos, pos + size)`` lies inside the buffer."""
        if pos < 0 or size < 0 or pos + size > len(self.data):
            raise ConversionError(f"{self.what}: {context}: bytes [{pos}, {pos + size}) lie outside the "
                                  f"{len(self.data)}-byte buffer (truncated or corrupted file)")

    def read(self, fmt: struct.Struct, pos: int, context: str):
        self.check(pos, fmt.size, context)
        return fmt.unpack_from(self.data, pos)[0]

    def deref(self, pos: int, context: str) -> int:
        """Follow the ``uoffset`` stored at ``pos``; returns the absolute target position."""
        target = pos + self.read(_U32, pos, context)
        self.check(target, 1, context + " (offset target)")
        return target

    def identifier(self) -> bytes:
        """The 4-byte file identifier (bytes 4..8), or b"" when the buffer is too short."""
        return self.data[4:8] if len(self.data) >= 8 else b""

    def root(self, context: str = "root table") -> "Table":
        return Table(self, self.deref(0, context), context)


class Table:
    """A table at absolute position ``pos``; fields are read by slot number (schema field order)."""

    def __init__(self, fb: FlatBuffer, pos: int, context: str):
        self.fb = fb
        self.pos = pos
        self.context = context
        vtable = pos - fb.read(_I32, pos, f"{context}: vtable offset")
        vt_size = fb.read(_U16, vtable, f"{context}: vtable size")
        table_size = fb.read(_U16, vtable + 2, f"{context}: table size")
        if vt_size < 4 or vt_size % 2:
            raise ConversionError(f"{fb.what}: {context}: invalid vtable size {vt_size} at byte {vtable}")
        if table_size < 4:
            raise ConversionError(f"{fb.what}: {context}: invalid table size {table_size} at byte {pos}")
        fb.check(vtable, vt_size, f"{context}: vtable")
        fb.check(pos, table_size, f"{context}: table")
        self.vtable = vtable
        self.num_fields = (vt_size - 4) // 2
        self.table_size = table_size

    def offset(self, slot: int, size: int = 0) -> int:
        """Absolute position of field ``slot`` (``size`` bytes), or 0 when the field is absent."""
        if slot >= self.num_fields:
            return 0
        rel = _U16.unpack_from(self.fb.data, self.vtable + 4 + 2 * slot)[0]
        if rel == 0:
            return 0
        if rel < 4 or rel + size > self.table_size:
            raise ConversionError(f"{self.fb.what}: {self.context}: field {slot} at offset {rel} lies outside "
                                  f"its {self.table_size}-byte table")
        return self.pos + rel

    def has(self, slot: int) -> bool:
        return self.offset(slot) != 0

    # -- scalars and structs -----------------------------------------------------------------
    def scalar(self, slot: int, kind: str, default=0):
        """A scalar field (``kind`` is a schema type name such as ``"int"`` or ``"float"``)."""
        fmt = struct.Struct(SCALARS[kind])
        pos = self.offset(slot, fmt.size)
        if pos == 0:
            return default
        return self.fb.read(fmt, pos, f"{self.context}: field {slot}")

    def struct(self, slot: int, fmt: str) -> Optional[tuple]:
        """An inline struct field unpacked with the ``struct`` format ``fmt`` (little-endian)."""
        s = struct.Struct("<" + fmt.lstrip("<"))
        pos = self.offset(slot, s.size)
        if pos == 0:
            return None
        self.fb.check(pos, s.size, f"{self.context}: struct field {slot}")
        return s.unpack_from(self.fb.data, pos)

    # -- references ----------------------------------------------------------------------------
    def _ref(self, slot: int, what: str) -> int:
        pos = self.offset(slot, 4)
        if pos == 0:
            return 0
        return self.fb.deref(pos, f"{self.context}: {what} field {slot}")

    def table(self, slot: int, name: str = "") -> Optional["Table"]:
        target = self._ref(slot, "table")
        if target == 0:
            return None
        return Table(self.fb, target, f"{self.context}.{name or slot}")

    def _vector(self, slot: int, elem_size: int, what: str) -> Tuple[int, int]:
        """(position of element 0, length) of a vector field; (0, 0) when absent."""
        target = self._ref(slot, what)
        if target == 0:
            return 0, 0
        ctx = f"{self.context}: {what} field {slot}"
        n = self.fb.read(_U32, target, ctx + " length")
        self.fb.check(target + 4, n * elem_size, f"{ctx} ({n} elements of {elem_size} bytes)")
        return target + 4, n

    def vector_len(self, slot: int) -> int:
        target = self._ref(slot, "vector")
        return 0 if target == 0 else self.fb.read(_U32, target, f"{self.context}: vector field {slot} length")

    def scalars(self, slot: int, kind: str) -> Optional[np.ndarray]:
        """A vector of scalars as a new (native-endian, writable) numpy array; None when absent."""
        dt = np.dtype(_NUMPY[kind])
        start, n = self._vector(slot, dt.itemsize, f"[{kind}] vector")
        if start == 0:
            return None
        arr = np.frombuffer(self.fb.data, dtype=dt, count=n, offset=start)
        out = arr.astype(dt.newbyteorder("="), copy=True)
        return out.astype(bool) if kind == "bool" else out

    def bytes(self, slot: int) -> Optional[bytes]:
        """A ``[ubyte]`` vector as bytes (a copy); None when absent."""
        start, n = self._vector(slot, 1, "[ubyte] vector")
        if start == 0:
            return None
        return self.fb.data[start:start + n]

    def string(self, slot: int) -> Optional[str]:
        """A string field decoded as UTF-8 (invalid bytes replaced); None when absent."""
        start, n = self._vector(slot, 1, "string")
        if start == 0:
            return None
        return self.fb.data[start:start + n].decode("utf-8", "replace")

    def tables(self, slot: int, name: str = "") -> List["Table"]:
        """A vector of tables (empty list when absent)."""
        start, n = self._vector(slot, 4, "[table] vector")
        label = name or str(slot)
        return [Table(self.fb, self.fb.deref(start + 4 * i, f"{self.context}.{label}[{i}]"),
                      f"{self.context}.{label}[{i}]") for i in range(n)]

    def structs(self, slot: int, fmt: str) -> List[tuple]:
        """A vector of inline structs, each unpacked with ``fmt``."""
        s = struct.Struct("<" + fmt.lstrip("<"))
        start, n = self._vector(slot, s.size, "[struct] vector")
        return [s.unpack_from(self.fb.data, start + i * s.size) for i in range(n)]

    def union(self, type_slot: int, value_slot: int, name: str = "") -> Tuple[int, Optional["Table"]]:
        """(type, value table) of a union field; (0, None) when NONE."""
        utype = self.scalar(type_slot, "ubyte", 0)
        if utype == 0:
            return 0, None
        value = self.table(value_slot, name or f"union{value_slot}")
        if value is None:
            raise ConversionError(f"{self.fb.what}: {self.context}: union field {value_slot} has type {utype} "
                                  "but no value")
        return utype, value
