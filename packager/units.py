"""The one way pkg writes a byte count for people: binary units, as AWS's own limits are counted.

Lambda's "50 MB" direct-upload limit is 52,428,800 bytes (50 MiB), its "250 MB" unzipped limit
262,144,000 bytes (250 MiB): a size shown beside a limit must use the same unit, or a chunk that
fits would read "52.4 MB" next to a limit of "50.0 MB".
"""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_size(size: int | float | None) -> str:
    """`52428800` -> "50.0 MiB"; `512` -> "512 B"; None -> "-"."""
    if size is None:
        return "-"
    if abs(size) < 1024:
        return f"{size:.0f} B"
    value = size / 1024
    for unit in _UNITS[:-1]:
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_DURATION_FACTORS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _number_and_unit(text: str) -> tuple[float, str]:
    stripped = text.strip()
    digits = len(stripped) - len(stripped.lstrip("0123456789."))
    number, unit = stripped[:digits], stripped[digits:].strip().lower()
    return float(number), unit  # ValueError when there is no number


def parse_size(text: str) -> int:
    """"5GiB", "500MB", "2g", "1024" -> bytes (KiB/MiB/GiB and a bare K/M/G are binary, KB/MB/GB decimal)."""
    try:
        number, unit = _number_and_unit(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (e.g. 5GiB, 500MB)") from None
    if unit not in _SIZE_FACTORS:
        raise ValueError(f"{text!r}: unknown unit {unit!r} (B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)")
    return int(number * _SIZE_FACTORS[unit])


def parse_duration(text: str) -> float:
    """"30d", "12h", "90m", "2w", "45s" -> seconds (a bare number is days)."""
    try:
        number, unit = _number_and_unit(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 30d, 12h)") from None
    if unit == "":
        unit = "d"
    if unit not in _DURATION_FACTORS:
        raise ValueError(f"{text!r}: unknown unit {unit!r} (s, m, h, d, w)")
    return number * _DURATION_FACTORS[unit]
