"""The search directory across params changes: continue, or move the old search aside.

``state.json`` records the params hash of the files under ``rounds/`` and ``controller/`` and
the result-deciding fields it hashes (the identity). When the params change:

- only ``search.rounds`` grew: every finished round is kept and re-stamped with the new hash
  (a round's results do not depend on how many rounds follow), so the search continues and
  ends byte-identical to a clean run with the new params;
- anything else: the whole old search moves to ``.previous-<old hash>/`` with a message naming
  the differing keys; nothing is deleted.

Either way the assembled outputs of the old params (``top.json``, ``archs.csv``, ...) never
stay beside the new state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ..identity import differing_keys
from ..io import read_json, save_torch, write_json
from .controller import read_checkpoint
from .layout import SearchLayout

EXTENDING_KEY = "search.rounds"


def _describe(diff: dict[str, tuple[object, object]]) -> str:
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in diff.items())


def _found_hashes(layout: SearchLayout) -> tuple[set[str], dict | None]:
    """The params hashes of what the directory holds, and the recorded identity (if any)."""
    if layout.state.is_file():
        state = read_json(layout.state)
        return {str(state.get("params_hash"))}, state.get("identity")
    # e.g. written by the Snakemake fan-out, which keeps no state file
    samples = layout.rounds_dir.glob("*/samples.json")
    return {str(read_json(p).get("params_hash")) for p in samples}, None


def _is_extension(diff: dict[str, tuple[object, object]]) -> bool:
    if set(diff) != {EXTENDING_KEY}:
        return False
    old, new = diff[EXTENDING_KEY]
    return isinstance(old, int) and isinstance(new, int) and new > old


def _restamp(layout: SearchLayout, old_hash: str, new_hash: str) -> None:
    """Give every kept round file the new params hash (atomically, file by file; a file that
    already carries it is left alone, so an interrupted re-stamp simply resumes)."""
    for path in sorted(layout.rounds_dir.glob("*/*.json")):
        payload = read_json(path)
        if payload.get("params_hash") == old_hash:
            write_json(path, {**payload, "params_hash": new_hash})
    for path in sorted(layout.controller_dir.glob("round_*.pt")):
        payload = read_checkpoint(path)
        if payload.get("params_hash") == old_hash:
            save_torch(path, {**payload, "params_hash": new_hash})


def _remove_assembled(layout: SearchLayout) -> None:
    for path in layout.assembled:  # stale as soon as the params hash changes
        path.unlink(missing_ok=True)
    layout.final_checkpoint.unlink(missing_ok=True)


def _aside_path(layout: SearchLayout, old_hash: str) -> Path:
    path = layout.root / f".previous-{old_hash}"
    number = 2
    while path.exists():
        path = layout.root / f".previous-{old_hash}-{number}"
        number += 1
    return path


def _move_aside(layout: SearchLayout, old_hash: str) -> Path | None:
    """Move the old search (rounds, controller, outputs, state) into ``.previous-<hash>/``."""
    paths = (layout.rounds_dir, layout.controller_dir, *layout.assembled, layout.state)
    present = [path for path in paths if path.exists()]
    if not present:
        return None
    aside = _aside_path(layout, old_hash)
    aside.mkdir(parents=True)
    for path in present:
        path.rename(aside / path.name)
    return aside


def prepare_directory(
    layout: SearchLayout, params_hash: str, identity: dict, stream: TextIO
) -> None:
    """Make ``layout`` hold a search of ``params_hash`` (whose hashed fields are ``identity``):
    continue an extended search, move a search made with other params aside, record the state.
    """
    found, old_identity = _found_hashes(layout)
    state = {"params_hash": params_hash, "identity": identity}
    if found == {params_hash}:
        write_json(layout.state, state)
        return
    old_hash = "-".join(sorted(found)) or "unknown"
    diff = differing_keys(old_identity, identity) if old_identity is not None else {}
    if len(found) == 1 and _is_extension(diff):
        stream.write(
            f"[search] {layout.root}: continuing the search of params {old_hash} "
            f"({_describe(diff)}); its finished rounds are kept\n"
        )
        _remove_assembled(layout)
        _restamp(layout, old_hash, params_hash)
        write_json(layout.state, state)
        return
    aside = _move_aside(layout, old_hash)
    if aside is not None:
        what = _describe(diff) if diff else "differing keys not recorded"
        stream.write(
            f"[search] {layout.root} held a search with other params ({old_hash} != "
            f"{params_hash}: {what}); moved it to {aside} (delete that folder when you no "
            "longer need it)\n"
        )
    write_json(layout.state, state)
