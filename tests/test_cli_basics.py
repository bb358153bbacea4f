"""CLI conventions that every command must follow, and README <-> CI consistency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_leaf_commands, cli_subparsers, command_path
from navigator import __version__
from navigator.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_command_has_help(capsys) -> None:
    commands = list(cli_subparsers(build_parser()))
    assert commands, "no sub-commands registered"
    for path, _ in commands:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0, path
        out = capsys.readouterr().out
        assert "usage: navigator" in out, path


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "navigator", "workspace", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "no such subject folder" in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "navigator", "--debug", "workspace", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_error_exit_code() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "<!-- test-command -->" in readme
    script = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in script and "-eq 5" in script  # pytest's "no tests" exit code is a failure
    proc = subprocess.run(
        ["awk", script.split("cmd=$(awk '", 1)[1].split("' README.md)", 1)[0], "README.md"],
        capture_output=True, text=True, cwd=ROOT,
    )
    cmd = proc.stdout.strip()
    assert cmd.startswith("bash scripts/setup.sh") and "pytest" in cmd, cmd
    assert f"```bash\n   {cmd}\n" in readme


def test_negative_coordinates_are_values_not_options() -> None:
    from navigator.cli import build_parser

    args = build_parser().parse_args(["fiducials", "x", "--lpa", "-80.5,0,-3e1", "--rpa", "80,0,0"])
    assert args.lpa == "-80.5,0,-3e1"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fiducials", "x", "--lpa", "--bogus"])


def test_cli_reference_documents_every_command() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    missing = [" ".join(p) for p, _ in cli_subparsers(build_parser()) if f"### navigator {' '.join(p)}\n" not in doc]
    assert not missing, f"docs/cli.md lacks {missing}: run python scripts/gen_cli_docs.py"


def test_negative_electrode_spec_is_a_value() -> None:
    from navigator.cli import build_parser

    args = build_parser().parse_args(["simulate", "tdcs", "x", "-e", "-40,20,60:-1:disc:12", "-e", "F3:1",
                                      "--out", "o"])
    assert "-40,20,60:-1:disc:12" in str(args)


def _main_calls_in_fast_tests():
    """The string arguments of every ``main([...])`` call with a literal argument list in a test or
    fixture that is not marked slow."""
    import ast

    def is_slow(decorators) -> bool:
        return any("slow" in ast.unparse(d) for d in decorators)

    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets)
               and "slow" in ast.unparse(n.value) for n in tree.body):
            continue
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            if is_slow(fn.decorator_list):
                continue
            for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                if getattr(call.func, "id", getattr(call.func, "attr", None)) != "main" or not call.args:
                    continue
                if not isinstance(call.args[0], ast.List):
                    continue
                yield [e.value for e in call.args[0].elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def test_every_command_runs_in_the_fast_tests() -> None:
    """Each command (and sub-command) of the CLI is run by at least one test not marked slow.

    A static check of the tests' ``main([...])`` calls; ``pytest -m "not slow" --cli-coverage``
    (tests/conftest.py) checks the same on a real run (it records the calls that ran)."""
    leaves = cli_leaf_commands()
    called = {command_path(words, leaves) for words in _main_calls_in_fast_tests()}
    missing = sorted(" ".join(c) for c in leaves - called)
    assert not missing, f"commands no fast test runs: {missing}"
