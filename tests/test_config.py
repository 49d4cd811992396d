"""Params schema validation (key paths in messages) and named-configuration switching."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from search_project import run_stage

from segnas import named_configs
from segnas.cli import main
from segnas.compare.config import CompareConfig
from segnas.config import (
    SCHEMA_PATH,
    changed_keys,
    flatten,
    load_config,
    load_params,
    load_schema,
    schema_errors,
    section,
    validate_params,
)
from segnas.errors import ConfigError
from segnas.named_configs import available_configs, config_path, config_text, use_config
from segnas.search.config import ControllerConfig, PPOConfig, SearchConfig
from segnas.trainconfig import TrainConfig
from segnas.trial.recipe import TrialSetup

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"
NESTED_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["seed", "train"],
    "properties": {
        "seed": {"type": "integer", "minimum": 0},
        "train": {
            "type": "object",
            "additionalProperties": False,
            "required": ["epochs", "lr"],
            "properties": {
                "epochs": {"type": "integer", "minimum": 1},
                "lr": {"type": "number", "exclusiveMinimum": 0},
                "crops": {"type": "array", "items": {"type": "integer", "minimum": 8}},
            },
        },
    },
}


def _write(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def _repo_params() -> dict:
    return load_params(REPO_ROOT / "params.yaml", require_all=True)


def test_keys_that_became_fixed_inputs_are_named_as_removed(tmp_path):
    """Issue 28: ``compare.controller`` and ``report.paper_results`` were params beside the
    registry's fixed inputs; a params file that still has them is told what to do."""
    params = _repo_params()
    params["compare"]["controller"] = "search/controller/final.pt"
    params["report"]["paper_results"] = "segnas/report/paper_results.yaml"
    with pytest.raises(ConfigError) as caught:
        load_params(_write(tmp_path / "params.yaml", params))
    message = str(caught.value)
    assert "compare.controller: unknown key (removed: compare always reads" in message
    assert "report.paper_results: unknown key (removed: the report reads" in message


def test_nested_errors_name_the_key_path():
    bad = {"seed": 0, "train": {"epoch": 3, "lr": "fast", "crops": [321, 2]}}
    problems = schema_errors(bad, NESTED_SCHEMA)
    assert "train.epoch: unknown key (did you mean 'epochs'?)" in problems
    assert "train.epochs: required key is missing" in problems
    assert any(p.startswith("train.lr: 'fast' is not of type 'number'") for p in problems)
    assert any(p.startswith("train.crops[1]: 2 is less than the minimum of 8") for p in problems)


def test_valid_nested_params_have_no_errors():
    good = {"seed": 1, "train": {"epochs": 3, "lr": 0.05, "crops": [321]}}
    assert schema_errors(good, NESTED_SCHEMA) == []


def test_repo_params_and_named_configs_are_valid():
    validate_params(_repo_params(), "params.yaml")
    for name in available_configs(CONFIGS):
        load_params(config_path(name, CONFIGS), require_all=True)


def test_default_params_is_the_quickstart():
    assert _repo_params() == load_params(CONFIGS / "quickstart.yaml")
    assert (REPO_ROOT / "params.yaml").read_text() == config_text("quickstart", CONFIGS)


def test_named_configs_set_every_knob_outside_the_datasets():
    """Every configuration spells out every key (datasets differ by source, so not those)."""
    quick = {k for k in flatten(_repo_params()) if not k.startswith("datasets.")}
    for name in available_configs(CONFIGS):
        keys = {
            k
            for k in flatten(load_params(CONFIGS / f"{name}.yaml"))
            if not k.startswith("datasets.")
        }
        assert keys == quick, f"{name}: {sorted(keys ^ quick)}"


def test_every_overlay_merges_onto_the_base_into_a_complete_commented_configuration():
    base = (CONFIGS / "base.yaml").read_text(encoding="utf-8")
    for name in available_configs(CONFIGS):
        text = config_text(name, CONFIGS)
        overlay = (CONFIGS / f"{name}.yaml").read_text(encoding="utf-8")
        assert text.startswith(overlay.split("\n\n", 1)[0])  # the overlay's own header
        assert text.count("#") > overlay.count("#")  # the base's comments come along
        validate_params(yaml.safe_load(text), f"{name} merged")  # every key, valid
    # the overlays hold only what differs (a one-line flow mapping is written whole)
    loader = named_configs._round_trip()

    def repeats(overlay, base, where=""):
        found = []
        for key, value in overlay.items():
            name = f"{where}{key}"
            if hasattr(value, "items") and not named_configs._is_flow(value):
                if name not in named_configs.REPLACED_WHOLE:
                    found += repeats(value, base[key], f"{name}.")
            elif value == base[key]:
                found.append(name)
        return found

    base_map = loader.load(named_configs.split_header(base)[1])
    for name in available_configs(CONFIGS):
        overlay = loader.load((CONFIGS / f"{name}.yaml").read_text()) or {}
        assert not repeats(overlay, base_map), f"{name} repeats the base"


def test_an_overlay_key_the_base_lacks_is_refused_naming_it(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "base.yaml").write_text((CONFIGS / "base.yaml").read_text())
    (configs / "mine.yaml").write_text("# mine\n\ntrain:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: train.epochz: not a key of base.yaml"):
        use_config("mine", tmp_path / "params.yaml", configs)
    assert not (tmp_path / "params.yaml").exists()


def test_paper_config_carries_the_papers_values():
    paper = load_params(CONFIGS / "paper.yaml")
    search = paper["search"]
    assert paper["split"] == {"dataset": "cityscapes", "val_fraction": 0.1}
    assert search["rounds"] * search["archs_per_round"] >= 2000
    assert search["eval"]["crop_size"] == [321, 321] and search["eval"]["batch_size"] == 32
    assert search["eval"]["phase1_epochs"] + search["eval"]["phase2_epochs"] == 10
    assert paper["train"]["epochs"] == 1000 and paper["train"]["optimizer"] == "sgd"
    assert paper["train"]["lr"] == 0.05 and paper["train"]["poly_power"] == 0.9
    assert (paper["train"]["dataset"], paper["train"]["batch_size"]) == ("camvid", 10)
    cityscapes = load_params(CONFIGS / "paper-cityscapes.yaml")["train"]
    assert (cityscapes["crop_size"], cityscapes["batch_size"]) == ([769, 769], 6)


def test_camvid_budget_config_is_the_15_minute_arch0_run():
    budget = load_params(CONFIGS / "camvid-budget.yaml")
    train = budget["train"]
    assert budget["stem"]["weights"] == "none"
    assert budget["datasets"]["camvid"]["longer_side"] == 240
    assert (train["architectures"], train["top_k"], train["time_budget_s"]) == (["arch0"], 0, 900)
    assert (train["optimizer"], train["batch_size"], train["crop_size"]) == ("adam", 16, [160, 160])
    assert train["lr"] == 4.0e-3 and train["class_weighting"] == "none"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p.update(sedd=1), "sedd: unknown key (did you mean 'seed'?)"),
        (lambda p: p.update(seed="zero"), "seed: 'zero' is not of type 'integer'"),
        (lambda p: p.update(seed=-3), "seed: -3 is less than the minimum of 0"),
        (lambda p: p.update(device="gpu"), "device: 'gpu' does not match"),
    ],
)
def test_load_params_reports_bad_values_with_file_and_key(tmp_path, edit, expected):
    params = _repo_params()
    edit(params)
    path = _write(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def _mappings(node: dict, prefix: str = ""):
    """Dotted paths of every fixed-key mapping (dataset names are free, their specs are not)."""
    for key, value in node.items():
        if isinstance(value, dict):
            path = f"{prefix}{key}"
            if path != "datasets":
                yield path
            yield from _mappings(value, f"{path}.")


def test_every_mapping_rejects_a_misspelt_key():
    params = _repo_params()
    schema = load_schema()
    paths = list(_mappings(params))
    assert {"train", "search.eval", "search.ppo", "datasets.synthetic"} <= set(paths)
    for path in paths:
        bad = copy.deepcopy(params)
        node = bad
        for key in path.split("."):
            node = node[key]
        node["no_such_knob"] = 1
        problems = schema_errors(bad, schema)
        assert any(p.startswith(f"{path}.no_such_knob: unknown key") for p in problems), path


def test_partial_params_are_allowed_for_a_single_stage_but_not_for_validate(tmp_path):
    path = _write(tmp_path / "params.yaml", {"seed": 0, "device": "cpu"})
    assert load_params(path) == {"seed": 0, "device": "cpu"}
    with pytest.raises(ConfigError, match="required key is missing"):
        load_params(path, require_all=True)


def test_malformed_yaml_and_non_mapping(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_params(listing)


def test_section_names_the_missing_key():
    with pytest.raises(ConfigError, match="section 'train' is missing"):
        section({"seed": 0}, "train")


def test_unknown_config_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        config_path("papr", CONFIGS)
    message = str(info.value)
    assert "unknown configuration 'papr'" in message
    assert "did you mean 'paper'" in message
    for name in ("quickstart", "camvid-cpu", "paper"):
        assert name in message


def test_use_config_switches_params_and_reports_changes(tmp_path):
    params = tmp_path / "params.yaml"
    assert set(available_configs(CONFIGS)) >= {"quickstart", "camvid-cpu", "paper"}
    use_config("quickstart", params, CONFIGS)
    assert params.read_text() == config_text("quickstart", CONFIGS)
    changed = use_config("paper", params, CONFIGS)
    assert params.read_text() == config_text("paper", CONFIGS)
    quick, paper = load_params(CONFIGS / "quickstart.yaml"), load_params(CONFIGS / "paper.yaml")
    assert changed == changed_keys(quick, paper) and changed
    assert use_config("paper", params, CONFIGS) == []


def test_use_config_refuses_an_invalid_configuration(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    _write(configs / "broken.yaml", {"seed": -1, "device": "cpu"})
    params = _write(tmp_path / "params.yaml", {"seed": 0, "device": "cpu"})
    before = params.read_bytes()
    with pytest.raises(ConfigError, match="seed: -1 is less than the minimum of 0"):
        use_config("broken", params, configs)
    assert params.read_bytes() == before


def test_cli_use_and_validate(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    argv = ["config", "--params", str(params), "--configs-dir", str(CONFIGS)]
    assert main([*argv, "use", "camvid-cpu"]) == 0
    assert "now holds configuration 'camvid-cpu'" in capsys.readouterr().out
    assert main([*argv, "validate"]) == 0
    assert main([*argv, "validate", "@paper", "@quickstart"]) == 0
    assert main([*argv, "use", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown configuration 'nope'" in err and "camvid-cpu" in err
    params.write_text("seed: 0\ndevice: cpu\ntypo_section: {}\n", encoding="utf-8")
    assert main([*argv, "validate"]) == 2
    assert "typo_section: unknown key" in capsys.readouterr().err


def test_schema_is_package_data():
    """A non-editable install validates: the schema lives in the package and is shipped."""
    import segnas

    assert SCHEMA_PATH.parent == Path(segnas.__file__).resolve().parent
    assert SCHEMA_PATH.is_file()
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'segnas = ["{SCHEMA_PATH.name}", ' in pyproject


def _quickstart_text() -> str:
    return config_text("quickstart", CONFIGS)


def test_duplicate_keys_are_rejected_with_their_lines(tmp_path):
    """Issue 16 item 6: ``seed`` twice validated as valid, the last one winning."""
    text = _quickstart_text()
    seed_line = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("seed:")))
    path = tmp_path / "params.yaml"
    path.write_text(text + "seed: 3\n", encoding="utf-8")
    last = len(text.splitlines()) + 1
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert str(path) in message
    assert f"line {last}: key 'seed' repeats the key on line {seed_line + 1}" in message
    nested = tmp_path / "nested.yaml"
    nested.write_text("seed: 0\ntrain:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 5: key 'lr' repeats the key on line 3"):
        load_params(nested)


@pytest.mark.parametrize("key", ["split.dataset", "train.dataset"])
def test_a_dataset_reference_must_name_a_configured_dataset(tmp_path, key):
    """Issue 16 item 7: an unknown ``split.dataset`` failed later with "run prepare first"."""
    params = _repo_params()
    section_name, name = key.split(".")
    params[section_name][name] = "camvd"
    path = _write(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert f"{key}: 'camvd' is not a dataset under datasets" in message
    assert "known: synthetic" in message


@pytest.mark.parametrize(
    "edit",
    [{"train": {"epochs": 2.0}}, {"seed": 0.0}, {"cache_stem": {"crop_size": [64.0, 64]}}],
)
def test_integer_keys_reject_integral_floats(tmp_path, edit):
    """Issue 16 item 9: ``train.epochs: 2.0`` was accepted but hashed differently from 2."""
    params = _repo_params()
    for name, value in edit.items():
        if isinstance(value, dict):
            params[name].update(value)
        else:
            params[name] = value
    path = _write(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="is a float; this key takes an integer: write"):
        load_params(path)


def test_a_number_written_1e_3_suggests_1_0e_3(tmp_path):
    """Issue 16 item 16: PyYAML reads ``1e-3`` as a string."""
    path = tmp_path / "params.yaml"
    path.write_text(_quickstart_text().replace("  lr: 0.01 ", "  lr: 1e-2 "), encoding="utf-8")
    assert "lr: 1e-2" in path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "train.lr: '1e-2' is a string" in str(info.value)
    assert "write 1.0e-2" in str(info.value)


STAGE_SCRIPTS = ("prepare", "split", "cache_stem", "search", "compare", "train", "evaluate")


@pytest.mark.parametrize("kind", ["latin-1", "directory"])
def test_unreadable_params_give_one_line_naming_the_file(tmp_path, capsys, kind):
    """Issue 16 item 11: a non-UTF-8 params file or a directory raised a traceback."""
    path = tmp_path / "params.yaml"
    if kind == "directory":
        path.mkdir()
        expected = f"{path} is a directory, not a YAML file"
    else:
        path.write_bytes(_quickstart_text().replace("segnas", "segnäs").encode("latin-1"))
        expected = f"{path} is not UTF-8 text"
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    for stage in (*STAGE_SCRIPTS, "report"):
        assert run_stage(tmp_path, stage, "--params", str(path)) == 2, stage
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, (stage, err)


CONFIG_CLASSES = (TrainConfig, SearchConfig, ControllerConfig, PPOConfig, TrialSetup, CompareConfig)


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_typed_configs_have_no_code_defaults(cls):
    """The schema is the one place for defaults and ranges."""
    with_default = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert with_default == []


def test_load_config_builds_nested_typed_configs_from_a_section():
    params = _repo_params()
    config = load_config(SearchConfig, params["search"], "search", seed=7)
    assert config.seed == 7 and isinstance(config.eval, TrialSetup)
    assert isinstance(config.eval.crop_size, tuple) and isinstance(config.ppo, PPOConfig)
    assert config == SearchConfig.from_params(params["search"], 7)
    with pytest.raises(ConfigError, match="search.eval.batch_sizes: unknown key"):
        bad = copy.deepcopy(params["search"])
        bad["eval"]["batch_sizes"] = 2
        load_config(SearchConfig, bad, "search", seed=0)
    with pytest.raises(ConfigError, match="train.stem_weights: required key is missing"):
        load_config(TrainConfig, params["train"], "train", seed=0)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("  lr: 0.01 ", "  lr: .nan ", "train.lr"),
        ("  onnx_tolerance: 1.0e-3", "  onnx_tolerance: .inf", "evaluate.onnx_tolerance"),
        ("  time_budget_s: null", "  time_budget_s: .inf", "train.time_budget_s"),
        ("  scale_range: [0.5, 2.0]", "  scale_range: [0.5, .inf]", "cache_stem.scale_range[1]"),
        ("clip: 0.1,", "clip: -.inf,", "search.ppo.clip"),
    ],
)
def test_nan_and_infinity_are_refused_for_every_number_naming_the_key(
    tmp_path, capsys, old, new, key
):
    """Issue 29 item 8: ``.nan`` and ``.inf`` passed every range check of the schema."""
    path = tmp_path / "params.yaml"
    text = _quickstart_text()
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}: " in err and "is not a finite number" in err
    assert run_stage(tmp_path, "train", "--params", "params.yaml") == 2
    assert f"{key}: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("old", "new", "key", "where"),
    [
        ("clip: 0.1,", "clip: 0.1, clip: 0.3,", "clip", "appears twice on line"),
        ("{train: 60,", "{train: 60, train: 6,", "train", "appears twice on line"),
        ("  lr: 0.01 ", "  lr: 0.01\n  lr: 0.02 ", "lr", "repeats the key on line"),
    ],
)
def test_a_key_repeated_in_a_flow_or_block_mapping_is_refused(
    tmp_path, capsys, old, new, key, where
):
    """Issue 29 item 8: ``ppo: {clip: 0.1, clip: 0.3}`` (one line) was accepted."""
    path = tmp_path / "params.yaml"
    text = _quickstart_text()
    assert old in text
    edited = text.replace(old, new, 1)
    path.write_text(edited, encoding="utf-8")
    line = next(i for i, x in enumerate(edited.splitlines(), 1) if new.split("\n")[-1] in x)
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: line {line}: key {key!r} {where}" in err and "keep one of them" in err


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            "  architectures: [arch0]",
            "  architectures: [{name: ../../x, genotype: arch0}]",
            "train.architectures[0].name",
        ),
        ("  models: all", "  models: [arch0, ../y]", "evaluate.models[1]"),
        ("  synthetic:\n", "  a/b:\n", "datasets"),
    ],
)
def test_names_that_become_folders_must_be_plain(tmp_path, capsys, old, new, key):
    """Issue 29 item 8: ``train.architectures`` name ``../../x`` wrote outside the project."""
    project = tmp_path / "project"
    project.mkdir()
    path = project / "params.yaml"
    text = _quickstart_text()
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err and "is not a plain name" in err and "/" in err
    for stage in ("prepare", "train", "evaluate"):
        assert run_stage(project, stage, "--params", "params.yaml") == 2
        assert "is not a plain name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
    assert sorted(p.name for p in project.iterdir()) == ["params.yaml"]
