import subprocess
import sys

import pytest

from segnas.cli import build_parser, main


def test_arch_show_prints_published_parameter_counts(capsys):
    assert main(["arch", "show", "arch0", "--classes", "19"]) == 0
    out = capsys.readouterr().out
    assert "decoder+head parameters: 223,571" in out
    assert "total parameters:        279,059" in out
    assert "FLOPs at 360x480" in out
    assert main(["arch", "show", "arch1", "--classes", "19"]) == 0
    assert "decoder+head parameters: 211,659" in capsys.readouterr().out


def test_arch_sample_is_seeded_and_its_output_validates(capsys):
    main(["arch", "sample", "--seed", "3", "--count", "2"])
    first = capsys.readouterr().out.splitlines()
    main(["arch", "sample", "--seed", "3", "--count", "2"])
    assert capsys.readouterr().out.splitlines() == first
    assert main(["arch", "validate", first[0]]) == 0
    assert "valid:" in capsys.readouterr().out


def test_user_errors_are_one_line_with_status_2(capsys):
    assert main(["arch", "show", "T:nope B:0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segnas: error: template 0") and err.count("\n") == 1


def test_every_subcommand_has_help():
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    stack = [(name, sub) for name, sub in actions[0].choices.items()]
    seen = 0
    while stack:
        name, sub = stack.pop()
        help_text = sub.format_help()
        assert "usage:" in help_text, name
        seen += 1
        for action in sub._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                stack.extend((f"{name} {n}", s) for n, s in action.choices.items())
    assert seen >= 4


@pytest.mark.parametrize("args", [["--help"], ["arch", "--help"], ["arch", "show", "--help"]])
def test_console_script_help(args):
    result = subprocess.run(
        [sys.executable, "-m", "segnas.cli", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "usage:" in result.stdout
