"""What a search's results depend on (its *identity*) and the check that a stage reading
``search/`` reads the search of today's params.

The identity is the result-deciding search fields, plus, for the ``train`` objective, the
stem weights and fingerprints of the data (split and stem cache). Its hash stamps every
round; ``search/state.json`` records both.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import section, setting
from ..errors import ArtifactError, ConfigError
from ..identity import describe_difference
from ..io import read_json, sha256_file
from ..pipeline.paths import SPLIT, STEM_CACHE
from .config import SearchConfig, params_hash_of


def data_fingerprint(split_dir: Path = SPLIT, cache_dir: Path = STEM_CACHE) -> dict[str, str]:
    """Hashes of the small files that identify the search data (split and stem cache)."""
    files = [split_dir / "meta_train.txt", split_dir / "meta_val.txt", cache_dir / "header.json"]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; run the split and cache_stem stages first")
    return {str(path): sha256_file(path)[:16] for path in files}


def identity_of(config: SearchConfig, extra: dict | None = None) -> dict:
    """The identity that ``params_hash_of(config, extra)`` hashes, in its JSON form (lists, not
    tuples): the form ``state.json`` gives back, so a stored and a fresh identity compare equal
    key by key."""
    return json.loads(json.dumps({"search": config.result_fields(), **(extra or {})}))


def search_identity(params: dict, params_path: str) -> tuple[SearchConfig, dict, str]:
    """(config, extra, params hash) of the search that ``params`` describe; ``extra`` is what
    the hash covers besides the search fields."""
    config = SearchConfig.from_params(
        section(params, "search", params_path), int(setting(params, "seed", params_path))
    )
    extra: dict = {}
    if config.objective == "train":
        stem_weights = str(section(params, "stem", params_path)["weights"])
        extra = {"data": data_fingerprint(), "stem_weights": stem_weights}
    return config, extra, params_hash_of(config, extra)


def recorded_identity(search_dir: Path, found: str) -> dict | None:
    """The identity ``search_dir/state.json`` records for the params hash ``found``, if any."""
    state_path = search_dir / "state.json"
    if not state_path.is_file():
        return None
    state = read_json(state_path)
    return state.get("identity") if str(state.get("params_hash")) == found else None


def refuse_stale(what: str, params_path: str, why: str, reader: str) -> ArtifactError:
    return ArtifactError(
        f"{what} of other params than {params_path} ({why}); {reader} would read its results "
        "as today's: rerun the search stage first"
    )


def check_search_matches(search_dir: Path, params: dict, params_path: str, reader: str) -> bool:
    """Refuse (naming the differing keys) when ``search_dir`` holds the search of other params
    than ``params``: ``reader`` would take another search's results for today's. False when
    no search of the stage's making is there to check (no state file, no rounds)."""
    state_path = search_dir / "state.json"
    if state_path.is_file():
        found = str(read_json(state_path).get("params_hash"))
    else:  # the Snakemake fan-out keeps no state file: its rounds carry the hash
        samples = sorted((search_dir / "rounds").glob("*/samples.json"))
        if not samples:
            return False
        found = str(read_json(samples[-1]).get("params_hash"))
    config, extra, expected = search_identity(params, params_path)
    if found == expected:
        return True
    stored = recorded_identity(search_dir, found)
    why = describe_difference(stored, identity_of(config, extra), found, expected)
    raise refuse_stale(f"{search_dir} holds a search", params_path, why, reader)
