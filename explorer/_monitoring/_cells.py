"""Closure variables located by cell: the cell object a ``LOAD_DEREF`` or ``STORE_DEREF``
uses, read from the running frame.

Contract: :func:`cell_at` returns the cell object that the instruction with argument
``index`` uses in ``frame`` (a frame that is running, in the INSTRUCTION hook of one of its
instructions), or None when it cannot be had for certain; :data:`BY_CELL` (decided once,
the first time :func:`by_cell` is asked) says whether closure variables are located by
cell in this process at all. A process locates every closure variable the same way: by
cell when the probe below succeeds, else by name (every cell of that name one location),
so two accesses to one cell always meet.

Why it is read from memory: a 3.12 frame does not expose its function or its cells
(``frame.f_locals`` holds their contents, not the cells), and the coroutine object only
shows them while it is suspended. The argument of ``LOAD_DEREF``/``STORE_DEREF`` is the
index of the cell among the frame's fast locals, which CPython 3.12 and 3.13 keep in the
frame's ``_PyInterpreterFrame``: ``PyFrameObject.f_frame`` (third word after the object
header) points to it; its first word is the code object, its seventh the frame object and
its fast locals start at byte 72. Every read is checked: the code and frame words must be
the frame's own, and the slot must hold a cell; otherwise the access is not modelled (the
step is UNKNOWN). On any other version or layout the probe fails and names are used.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Final

_FRAME_DATA: Final = 16 + 8      # PyFrameObject: object header, f_back, then f_frame
_FRAME_OBJECT: Final = 6 * 8     # _PyInterpreterFrame.frame_obj
_LOCALSPLUS: Final = 72          # _PyInterpreterFrame.localsplus

_ctypes: Any = None
BY_CELL: bool | None = None
"""Whether closure variables are located by cell (None until first asked)."""


def cell_at(frame: types.FrameType, index: int) -> types.CellType | None:
    """The cell at fast-local ``index`` of the running ``frame``, or None if the frame's
    layout does not check out."""
    c_void_p = _ctypes.c_void_p
    base = c_void_p.from_address(id(frame) + _FRAME_DATA).value
    if base is None or c_void_p.from_address(base).value != id(frame.f_code) \
            or c_void_p.from_address(base + _FRAME_OBJECT).value != id(frame) \
            or not 0 <= index < _fast_locals(frame.f_code):
        return None
    address = c_void_p.from_address(base + _LOCALSPLUS + 8 * index).value
    if address is None:
        return None
    cell = _ctypes.cast(address, _ctypes.py_object).value
    return cell if type(cell) is types.CellType else None


def _fast_locals(code: types.CodeType) -> int:
    """How many fast locals a frame of ``code`` has, at most."""
    return len(code.co_varnames) + len(code.co_cellvars) + len(code.co_freevars)


def by_cell() -> bool:
    """Whether closure variables are located by cell in this process (probed once)."""
    global BY_CELL, _ctypes
    if BY_CELL is None:
        BY_CELL = False
        if sys.implementation.name == "cpython" and sys.version_info[:2] in ((3, 12), (3, 13)) \
                and sys.maxsize > 2 ** 32:
            import ctypes  # only here: most explorations never touch a closure variable

            _ctypes = ctypes
            try:
                BY_CELL = _probe()
            except Exception:  # noqa: BLE001 - any failure means: locate by name
                BY_CELL = False
    return BY_CELL


def _probe() -> bool:
    """Find, from inside a running frame, the cell its closure holds, by the same reads
    :func:`cell_at` makes."""
    value = object()

    def inner() -> object:
        return value

    import dis

    frame = sys._getframe()
    # The index a LOAD_DEREF or STORE_DEREF of "value" in this frame uses.
    index = next((instruction.arg for instruction in dis.get_instructions(_probe)
                  if instruction.opname in ("LOAD_DEREF", "STORE_DEREF")
                  and instruction.argval == "value"), None)
    if index is None or inner.__closure__ is None:
        return False
    return cell_at(frame, index) is inner.__closure__[0]
