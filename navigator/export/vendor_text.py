"""Reading values written by other programs, liberally: numbers, enumerations, booleans, text, XML names.

Navigation systems and their users produce files by hand, on Windows, in other locales:
byte-order marks, CRLF line ends, ``NaN``/``(null)`` for "no value", decimal commas in some
locales, enumerations in any case (``simnibs`` / ``SIMNIBS``, ``ras`` / ``RAS``, ``mm`` / ``MM``),
keys and XML element/attribute names in any case, XML with namespaces. Readers use these helpers so that they accept all of that in the same way and stay
strict only about what changes the meaning (an unknown coordinate system, a non-number).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from navigator.core.errors import InputError

#: Cell values that mean "no value" in navigation exports (compared case-insensitively).
MISSING = frozenset({"", "nan", "-nan", "(null)", "null", "none", "n/a", "na", "-"})


def parse_number(text: Any) -> float | None:
    """A float from a cell/attribute, None for the "no value" spellings (:data:`MISSING`).

    Accepts surrounding whitespace and a decimal comma (``"62,5"``) when the text has no point.
    Raises ValueError for anything else that is not a number, infinities included.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        v = float(text)
        if v in (math.inf, -math.inf):
            raise ValueError("not a finite number")
        return None if v != v else v  # NaN -> None
    s = str(text).strip().lstrip("\ufeff")
    if s.lower() in MISSING:
        return None
    if "," in s and "." not in s and s.count(",") == 1:
        s = s.replace(",", ".")
    v = float(s)  # ValueError for text
    if v in (math.inf, -math.inf):
        raise ValueError(f"not a finite number: {s!r}")
    return None if v != v else v


def number(text: Any, path: str | Path, what: str) -> float | None:
    """:func:`parse_number` raising :class:`InputError` naming ``path`` and ``what``."""
    try:
        return parse_number(text)
    except ValueError:
        raise InputError(path, f"{what}: not a number: {str(text)[:40]!r}") from None


def enum_key(value: Any) -> str:
    """Normalised spelling of an enumeration value: case-folded, without spaces, '_' or '-'."""
    return re.sub(r"[\s_\-]+", "", str(value)).casefold()


def enum_is(value: Any, *accepted: str) -> bool:
    """True if ``value`` is one of ``accepted`` ignoring case, spaces, '_' and '-'."""
    k = enum_key(value)
    return any(k == enum_key(a) for a in accepted)


def read_text(path: str | Path) -> str:
    """A text file as str: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Line ends are normalised to ``\\n``. Binary files (NUL bytes without a UTF-16 BOM) are refused.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    elif b"\x00" in raw:
        raise InputError(path, "binary data, not a text file")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def local_name(tag: str) -> str:
    """XML element/attribute name without its namespace (``{uri}Name`` -> ``Name``)."""
    return tag.rsplit("}", 1)[-1]


def attrs(el) -> dict[str, str]:
    """Attributes of an XML element by case-folded local name."""
    return {local_name(k).casefold(): v for k, v in el.attrib.items()}


def children(el, name: str) -> list:
    """Direct children of ``el`` whose local name equals ``name`` ignoring case."""
    n = name.casefold()
    return [c for c in el if isinstance(c.tag, str) and local_name(c.tag).casefold() == n]


def descendants(el, name: str) -> list:
    """All descendants (and ``el`` itself) whose local name equals ``name`` ignoring case."""
    n = name.casefold()
    return [c for c in el.iter() if isinstance(c.tag, str) and local_name(c.tag).casefold() == n]


def first(el, name: str):
    """The first descendant named ``name`` (ignoring case and namespace), or None."""
    found = descendants(el, name)
    return found[0] if found else None


def key_get(d: dict, *names: str, default: Any = None) -> Any:
    """``d[name]`` for the first of ``names`` present, matching keys case-insensitively."""
    if not isinstance(d, dict):
        return default
    folded = {str(k).casefold(): v for k, v in d.items()}
    for n in names:
        if n.casefold() in folded:
            return folded[n.casefold()]
    return default
