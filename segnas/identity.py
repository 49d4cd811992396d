"""Identities of stage outputs: the params a producer recorded beside its output, compared key
by key with today's, so that a stage reading another stage's output can name what differs."""

from __future__ import annotations


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def differing_keys(old: dict, new: dict) -> dict[str, tuple[object, object]]:
    """``{dotted key: (old, new)}`` for every leaf that differs between two identities."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return {
        key: (flat_old.get(key), flat_new.get(key))
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    }


def describe_difference(
    stored: dict | None, current: dict, found: str, expected: str, prefix: str = ""
) -> str:
    """``key old -> new, ...`` for the leaves that differ between a producer's stored identity
    and today's (``prefix`` before each key); the two hashes when no identity was stored."""
    diff = differing_keys(stored, current) if stored is not None else {}
    described = ", ".join(f"{prefix}{key} {old!r} -> {new!r}" for key, (old, new) in diff.items())
    return described or f"params hash {found} != {expected}"
