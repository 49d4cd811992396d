import importlib.util
from pathlib import Path

import yaml

from segnas.data.prepared import load_prepared
from segnas.data.split import load_split
from segnas.data.stem_cache import open_stem_cache

STAGES = Path(__file__).resolve().parents[1] / "stages"
PARAMS = {
    "seed": 0,
    "device": "cpu",
    "stem": {"weights": "none"},
    "datasets": {
        "tiny": {
            "source": "synthetic",
            "num_images": {"train": 12, "val": 2},
            "image_size": [32, 48],
        },
    },
    "split": {"dataset": "tiny", "val_fraction": 0.25},
    "cache_stem": {
        "crop_size": [24, 32],
        "num_samples": 5,
        "scale_range": [0.75, 1.25],
        "flip": True,
    },
}


def stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", STAGES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_all(params_file):
    return [stage(n)(["--params", str(params_file)]) for n in ("prepare", "split", "cache_stem")]


def test_data_stages_write_their_fixed_outputs_reproducibly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert run_all("params.yaml") == [0, 0, 0]
    out = capsys.readouterr().out
    assert "split: tiny train 12 -> meta-train 9, meta-val 3" in out
    prepared = load_prepared("data/prepared/tiny")
    train, val = load_split("data/split")
    assert len(train) == 9 and len(val) == 3 and set(train) | set(val) == set(prepared.ids("train"))
    cache = open_stem_cache("cache/stem", expected={"crop_size": [24, 32], "num_samples": 5})
    assert set(cache.ids) <= set(train)
    first = {p: p.read_bytes() for p in Path(".").rglob("*") if p.is_file()}
    assert run_all("params.yaml") == [0, 0, 0]
    second = {p: p.read_bytes() for p in Path(".").rglob("*") if p.is_file()}
    assert first == second


def test_stage_errors_are_one_line_and_name_the_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = {**PARAMS, "split": {"dataset": "missing", "val_fraction": 0.25}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for name in ("prepare", "split"):
        assert stage(name)(["--params", "params.yaml"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"{name}: error: params.yaml: split.dataset:")
        assert "'missing' is not a dataset under datasets: (known: tiny)" in err[0]
    Path("params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert stage("split")(["--params", "params.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("split: error: prepared dataset data/prepared/tiny does not exist")
    assert not Path("data/split").exists()


def test_cache_stem_refuses_a_split_of_another_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert stage("prepare")(["--params", "params.yaml"]) == 0
    assert stage("split")(["--params", "params.yaml"]) == 0
    other = {**PARAMS, "split": {"dataset": "other", "val_fraction": 0.25}}
    other["datasets"] = {**PARAMS["datasets"], "other": PARAMS["datasets"]["tiny"]}
    Path("params.yaml").write_text(yaml.safe_dump(other))
    assert stage("cache_stem")(["--params", "params.yaml"]) == 2
    err = capsys.readouterr().err
    assert "data/split" in err and "'tiny'" in err and "'other'" in err and "split stage" in err
    assert not Path("cache/stem").exists()
