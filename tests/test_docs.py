"""Every ```python block in README.md and docs/*.md runs as written.

One test per Markdown file. The blocks of one file run in order in one shared namespace (a
reader runs them top to bottom), in a fresh temporary working directory, so files a block
writes never leak into the repository or into another file's blocks. Tracebacks point at the
Markdown file and its real line numbers (each block is compiled with its line offset).

The fence's info string says when a block must not run:

- ```python skip   never run (the prose beside it must say why: it needs a model file the
                    reader supplies, a network, ...);
- ```python torch  run only when PyTorch is installed, else the test skips with a reason;
- ```python gpu    run only when onnxruntime can really use CUDA.

A block that uses names defined by a ```python torch or gpu block carries the same tag.

Blocks in other languages (```bash, ```text, plain ```) are not run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```python(?P<info>[^\n`]*)$")
KNOWN_TAGS = {"skip", "torch", "gpu"}


@dataclass(frozen=True)
class Block:
    """One ```python block: its source, the 1-based line of its first code line, its tags."""

    source: str
    first_line: int
    tags: frozenset[str]


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, in order (indented fences are dedented)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE_OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, tags = match["indent"], frozenset(match["info"].split())
        unknown = tags - KNOWN_TAGS
        if unknown:
            raise ValueError(f"{path.name}:{i + 1}: unknown fence tag(s) {sorted(unknown)}; known: {sorted(KNOWN_TAGS)}")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"{path.name}:{i + 1}: ```python block never closed")
        blocks.append(Block("\n".join(body) + "\n", i + 2, tags))
        i = j + 1
    return blocks


def _cuda_available() -> bool:
    try:
        from irflow.executors.onnx.device import cuda_available
    except ImportError:
        return False
    return cuda_available()


def _skip_reason(tags: frozenset[str]) -> str | None:
    if "skip" in tags:
        return None  # never run; not a reason to skip the rest of the file
    if "torch" in tags:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "PyTorch is not installed"
    if "gpu" in tags and not _cuda_available():
        return "onnxruntime cannot use CUDA on this machine"
    return None


def _files_with_blocks() -> list[Path]:
    return [p for p in DOC_FILES if python_blocks(p)]


@pytest.mark.parametrize("path", _files_with_blocks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem}"}
    skipped: list[str] = []
    for block in python_blocks(path):
        if "skip" in block.tags:
            continue
        reason = _skip_reason(block.tags)
        if reason is not None:
            skipped.append(f"line {block.first_line}: {reason}")
            continue
        # Padding with newlines makes tracebacks quote the Markdown file's own line numbers.
        code = compile("\n" * (block.first_line - 1) + block.source, str(path), "exec")
        exec(code, namespace)
    if skipped:
        pytest.skip("; ".join(skipped))


def test_fence_parser_reads_tags_and_lines(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n```python\na = 1\n```\n\n```python torch\nb = 2\n```\n```bash\nls\n```\n"
                   "  ```python skip\n  c = 3\n  ```\n")
    blocks = python_blocks(doc)
    assert [(b.source, b.first_line, set(b.tags)) for b in blocks] == [
        ("a = 1\n", 3, set()), ("b = 2\n", 7, {"torch"}), ("c = 3\n", 13, {"skip"})]
    doc.write_text("```python gpus\nx\n```\n")
    with pytest.raises(ValueError, match="unknown fence tag"):
        python_blocks(doc)
