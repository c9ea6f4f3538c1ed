"""The docs stay true to the code: the README is a short front door, and the configuration
reference names every key of the `[tool.pkg]` schema (walked from packager.config, so a new key
without its line in docs/configuration.md fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from packager import config

REPO = Path(__file__).resolve().parents[2]
README_MAX_BYTES = 10 * 1024


def schema_keys(schema: object, where: str = "tool.pkg") -> set[tuple[str, str]]:
    """Every (table path, key) of a Table, through nested Tables and NamedTables."""
    if isinstance(schema, config.NamedTables):
        return schema_keys(schema.schema, f"{where}.<name>")
    if not isinstance(schema, config.Table):
        return set()
    keys = set()
    for key, entry in schema.items():
        keys.add((where, key))
        keys |= schema_keys(entry, f"{where}.{key}")
    return keys


def test_readme_is_at_most_10_kb():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_configuration_reference_names_every_key():
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    keys = schema_keys(config.ROOT_TABLE)
    assert len(keys) > 50  # the walk reached the nested tables
    missing = sorted(f"{where}.{key}" for where, key in keys if f"`{key}`" not in text)
    assert not missing, f"docs/configuration.md does not mention: {', '.join(missing)}"


def test_configuration_reference_has_a_section_per_table():
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    headings = "\n".join(line for line in text.splitlines() if line.startswith("## "))
    for key, entry in config.ROOT_TABLE.items():
        if isinstance(entry, (config.Table, config.NamedTables)):
            assert f"[tool.pkg.{key}" in headings, f"no section for [tool.pkg.{key}] in docs/configuration.md"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_between_pages_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        links = re.findall(r"\]\(([^)\s]+\.md)(?:#([^)]+))?\)", page.read_text(encoding="utf-8"))
        for target, anchor in links:
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name} links to {target}, which does not exist"
            assert not anchor or anchor in anchors(path), f"{page.name} links to {target}#{anchor}: no such heading"


def test_readme_links_into_docs():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([^)#]+)", text))
    pages = {page.name for page in (REPO / "docs").glob("*.md")}
    assert pages <= linked, f"README.md does not link to: {', '.join(sorted(pages - linked))}"


def test_every_docs_page_has_a_title():
    for page in sorted((REPO / "docs").glob("*.md")):
        first = page.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), f"{page.name} does not start with a title"
