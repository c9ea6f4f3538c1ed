"""docs/benchmarks.md: each benchmark writes its own section, with the commit and machine it measured.

One file, one `## <title>` section per benchmark; writing a section replaces that section alone, so
`make bench` (every benchmark in turn) and a single `python bench/bench_publish.py` both leave the
other sections as they were.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "docs" / "benchmarks.md"

HEADER = """\
# Benchmarks

Written by `make bench` (bench/bench.py, bench_deps.py, bench_publish.py, bench_rollback.py, bench_shared.py): each
section is replaced by the benchmark that measured it, with the commit, date and machine. Run it on
a quiet machine; figures taken under load are not comparable.
"""


def commit() -> str:
    """`git rev-parse --short HEAD`, with `-dirty` when tracked files differ (this report aside)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        # The report itself changes while `make bench` runs: it must not mark later sections dirty.
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", f":!{REPORT.relative_to(REPO)}")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("-dirty" if changed else "")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: CPU model, cores, Python version, OS."""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" {platform.system()} {platform.release()} ({platform.machine()})"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: one header row, then `rows` (cells rendered with str())."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(title: str, body: str, path: Path = REPORT) -> None:
    """Replace (or add) the `## title` section of the report with `body` and what was measured where."""
    stamp = f"Commit `{commit()}`, {datetime.date.today().isoformat()}; {machine()}."
    section = f"## {title}\n\n{stamp}\n\n{body.strip()}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _match: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    print(f"wrote the section '{title}' of {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
