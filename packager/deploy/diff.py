"""What changed between two states, said once for every service: tag diffs and change descriptions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TagDiff:
    """Tags to set (new or changed values) and tag keys to remove, to go from `current` to `wanted`."""

    added: dict
    removed: list[str]

    @classmethod
    def between(cls, current: dict, wanted: dict) -> TagDiff:
        added = {key: value for key, value in wanted.items() if current.get(key) != value}
        return cls(added, sorted(key for key in current if key not in wanted))

    @property
    def added_text(self) -> str:
        return f"tags set: {', '.join(sorted(self.added))}"

    @property
    def removed_text(self) -> str:
        return f"tags removed: {', '.join(self.removed)}"


# Settings shown as "<key> ... changed" (their values are too long for a reason line).
_NESTED = ("Command", "DefaultArguments")


def describe_change(old: dict | None, new: dict, what: str, keys: list[str] | None = None) -> str:
    """"MemorySize 128 -> 256, environment changed and 2 more": at most three differing keys named.

    `what` names the whole when nothing was known before ("configuration changed"); `keys` is the
    order to compare in (default: every key of either, sorted).
    """
    if not old:
        return f"{what} changed"
    order = keys if keys is not None else sorted(set(old) | set(new))
    changed = [key for key in order if old.get(key) != new.get(key)]
    shown = []
    for key in changed[:3]:
        before, after = old.get(key), new.get(key)
        if key == "Environment":
            shown.append("environment changed")
        elif key in _NESTED:
            inner, wanted = before or {}, after or {}
            names = sorted(k for k in set(inner) | set(wanted) if inner.get(k) != wanted.get(k))
            shown.append(f"{key} {', '.join(names)} changed")
        else:
            shown.append(f"{key} {before} -> {after}")
    return ", ".join(shown) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def describe_layers(old: list, new: list) -> str:
    """"layers a:3 -> a:4": the layer versions of a function, by name and version."""

    def short(arn: object) -> str:
        return str(arn).rsplit(":layer:", 1)[-1]

    return "layers " + (", ".join(map(short, old)) or "(none)") + " -> " + (", ".join(map(short, new)) or "(none)")
