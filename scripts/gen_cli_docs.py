"""Regenerate the command reference in docs/cli.md from the argparse parsers.

Usage: python scripts/gen_cli_docs.py   (rewrites the part of docs/cli.md after the marker)
"""

from __future__ import annotations

import argparse
import io
import os
from contextlib import redirect_stdout
from pathlib import Path

MARKER = "<!-- generated reference below: python scripts/gen_cli_docs.py -->"


def walk(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from walk(sub, path + (name,))


def reference() -> str:
    os.environ["COLUMNS"] = "100"
    from navigator.cli import build_parser

    parts = []
    for path, sub in walk(build_parser()):
        buf = io.StringIO()
        with redirect_stdout(buf):
            sub.print_help()
        parts.append(f"### navigator {' '.join(path)}\n\n```text\n{buf.getvalue().rstrip()}\n```\n")
    return "\n".join(parts)


def main() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    head = doc.read_text().split(MARKER)[0] if doc.exists() else ""
    doc.write_text(head + MARKER + "\n\n" + reference())


if __name__ == "__main__":
    main()
