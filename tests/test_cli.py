import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from segnas.cli import build_parser, main
from segnas.named_configs import config_text
from segnas.pipeline.reference import copy_sources

REPO = Path(__file__).resolve().parents[1]


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


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, tuple[str, object]]:
    """Every leaf command: its one-line help and its parser."""
    found: dict[str, tuple[str, object]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": (helps.get(name) or "", sub)})
    return found


def test_every_command_says_what_it_does_and_runs_a_function():
    commands = _commands(build_parser())
    assert {"arch show", "config validate", "repro-hash", "dvc-yaml"} <= set(commands)
    for name, (help_text, sub) in commands.items():
        assert help_text.strip(), f"{name} has no help line"
        assert callable(sub.get_default("func")), f"{name} runs nothing"


def test_dvc_yaml_command_checks_and_regenerates(tmp_path, capsys):
    copy_sources(REPO, tmp_path)
    root = ["--root", str(tmp_path)]
    assert main(["dvc-yaml", "--check", *root]) == 0
    (tmp_path / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    assert main(["dvc-yaml", "--check", *root]) == 1
    assert "segnas dvc-yaml" in capsys.readouterr().out
    assert main(["dvc-yaml", *root]) == 0
    assert (tmp_path / "dvc.yaml").read_bytes() == (REPO / "dvc.yaml").read_bytes()


@pytest.mark.parametrize("args", [["--help"], ["arch", "--help"], ["arch", "show", "--help"]])
def test_console_script_help(args):
    result = subprocess.run(
        [sys.executable, "-m", "segnas.cli", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_config_use_keeps_a_hand_edited_params_file_and_prints_the_full_diff(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    configs = str(REPO / "configs")
    common = ["config", "--params", str(params), "--configs-dir", configs, "use"]
    assert main([*common, "quickstart"]) == 0
    assert main([*common, "paper"]) == 0  # a known configuration is replaced without asking
    out = capsys.readouterr().out
    assert "in all)" not in out and out.count("\n  ") > 15
    edited = params.read_text(encoding="utf-8").replace("seed: 0", "seed: 7", 1)
    params.write_text(edited, encoding="utf-8")
    assert main([*common, "quickstart"]) == 2
    err = capsys.readouterr().err
    assert str(params) in err and "--force" in err
    assert params.read_text(encoding="utf-8") == edited
    assert main([*common, "quickstart", "--force"]) == 0
    out = capsys.readouterr().out
    backups = list(tmp_path.glob("params.yaml.backup-*"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == edited
    assert str(backups[0]) in out and "seed: 7 -> 0" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["arch", "sample", "--count", "-1"],
        ["arch", "sample", "--count", "0"],
        ["bench", "latency", "--repeats", "0"],
        ["bench", "latency", "--batch", "-2"],
        ["bench", "latency", "--threads", "0"],
        ["bench", "latency", "--warmup", "-1"],
        ["reward-audit", "--per-group", "0"],
        ["reward-audit", "--workers", "0"],
        ["reward-audit", "--final-repeats", "-1"],
        ["predict", "x.png", "--model", "m.pt", "--max-pixels", "0"],
        ["repro-check", "--abs-tol", "nan"],
        ["repro-check", "--rel-tol", "-0.1"],
    ],
)
def test_count_options_refuse_non_positive_values_naming_the_option(argv, capsys):
    option = next(a for a in argv if a.startswith("--") and a != "--model")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and "must be" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["arch", "show", "arch0", "--size", "99999999x99999999"],
        ["bench", "latency", "--size", "360x99999"],
        ["predict", "x.png", "--model", "m.pt", "--size", "5000x5000"],
    ],
)
def test_size_options_are_bounded_naming_the_limit(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --size:" in err and "too large (at most 4096x4096)" in err


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text + "# run 17 notes\n",  # a comment appended
        lambda text: text.replace("\n", "\n\n", 1),  # layout only: a blank line
        lambda text: "# notes at the top\n" + text,
    ],
)
def test_config_use_backs_up_a_params_file_whose_text_differs_only_in_comments(
    tmp_path, capsys, edit
):
    params = tmp_path / "params.yaml"
    configs = str(REPO / "configs")
    common = ["config", "--params", str(params), "--configs-dir", configs, "use"]
    assert main([*common, "quickstart"]) == 0
    edited = edit(params.read_text(encoding="utf-8"))
    params.write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert main([*common, "paper"]) == 2
    err = capsys.readouterr().err
    assert str(params) in err and "'quickstart'" in err and "--force" in err
    assert params.read_text(encoding="utf-8") == edited
    assert main([*common, "quickstart", "--force"]) == 0
    backups = list(tmp_path.glob("params.yaml.backup-*"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == edited
    assert str(backups[0]) in capsys.readouterr().out
    assert params.read_text(encoding="utf-8") == config_text("quickstart", configs)


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["--frobnicate"], "segnas"),
        (["arch", "--frobnicate"], "segnas arch"),
        (["config", "--frobnicate=1"], "segnas config"),
    ],
)
def test_an_unknown_option_is_named_even_without_a_command(argv, prog, capsys):
    """Issue 29 item 10: ``segnas --frobnicate`` said "arguments are required: COMMAND"."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{prog}: error: unrecognized option {argv[-1]!r}" in err
    assert "required" not in err
    with pytest.raises(SystemExit):
        main(argv[:-1])
    assert "the following arguments are required" in capsys.readouterr().err
