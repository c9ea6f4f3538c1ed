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
