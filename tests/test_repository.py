"""The repository's own text files are whole: no merge-conflict markers left in them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".toml", ".cfg", ".txt", ".sh"}
SKIPPED = {".git", ".venv", "data", "runs", "outputs", "multirun", "build", "dist"}
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def text_files() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*")
        if path.suffix in TEXT_SUFFIXES
        and path.is_file()
        and not any(part in SKIPPED or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts)
    ]


def test_no_file_holds_merge_conflict_markers() -> None:
    files = text_files()
    assert ROOT / "README.md" in files and len(files) > 100
    marked = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in files
        for text in [path.read_text(errors="replace")]
        for match in [MARKER.search(text)]
        if match
    ]
    assert not marked, f"merge-conflict markers at {marked}"
