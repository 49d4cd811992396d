"""Loading ``params.yaml`` (safe YAML), schema validation, sections and named configurations.

Stage entry points call ``load_params`` (which validates against the schema shipped in the
package, ``segnas/params.schema.yaml``) and ``section``; library functions take explicit
arguments instead. ``segnas.named_configs.use_config`` switches ``params.yaml`` to one of
``configs/<name>.yaml``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError
from .io import read_yaml

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent / "params.schema.yaml"
T = TypeVar("T")


# jsonschema is imported where params are validated, not with this module: code that builds its
# configs directly (bench/gpu_check.py on a bare GPU machine) runs without it.
@lru_cache(maxsize=1)
def _validator_class() -> type:
    """Draft 2020-12 validation where an integer key takes an int, never a float such as 2.0
    (which JSON Schema counts as an integer): the hashes of what a stage made depend on the
    value's JSON text, so 2.0 and 2 would name the same training differently. Such values are
    rejected, not converted."""
    import jsonschema

    return jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer",
            lambda _checker, value: isinstance(value, int) and not isinstance(value, bool),
        ),
    )


DATASET_REFERENCES = ("split.dataset", "train.dataset")


@lru_cache(maxsize=4)
def _cached_schema(path: str) -> dict[str, Any]:
    schema = read_yaml(path)
    if not isinstance(schema, dict):
        raise ConfigError(f"{path}: the schema must be a mapping")
    _validator_class().check_schema(schema)
    return schema


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The params JSON schema (a YAML file), checked to be a valid Draft 2020-12 schema."""
    if not Path(path).is_file():
        raise ConfigError(
            f"the params schema {path} is missing; reinstall segnas (the schema is package "
            "data, segnas/params.schema.yaml)"
        )
    return copy.deepcopy(_cached_schema(str(path)))


def _key_path(parts: Any, where: str = "") -> str:
    text = where
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


FOLDER_NAME = "^[A-Za-z0-9_][A-Za-z0-9_-]*$"  # params.schema.yaml, $defs/folder_name
# Keys that were params and are now fixed inputs: what to do with a params file that has them.
REMOVED_KEYS = {
    "compare.controller": "removed: compare always reads search/controller/final.pt; delete it",
    "report.paper_results": "removed: the report reads segnas/report/paper_results.yaml; delete it",
}


def _describe(error: jsonschema.ValidationError, base: str = "") -> list[str]:
    where = _key_path(error.absolute_path, base)
    prefix = "" if where == "(top level)" else f"{where}."
    if error.validator in ("anyOf", "oneOf") and error.context:
        # the branches that fit the value's kind say what is wrong; "not valid under any of
        # the given schemas" does not
        fitting = [
            sub
            for sub in error.context
            if sub.relative_path or sub.validator not in ("type", "const", "enum")
        ]
        if fitting:
            return [line for sub in fitting for line in _describe(sub, base)]
    if error.validator == "pattern" and error.validator_value == FOLDER_NAME:
        return [
            f"{where}: {error.instance!r} is not a plain name (letters, digits, _ and -, not "
            "starting with -; no / or ..): it names a folder, so rename it"
        ]
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        lines = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            hint = REMOVED_KEYS.get(f"{prefix}{key}", hint)
            lines.append(f"{prefix}{key}: unknown key ({hint})")
        return lines
    if error.validator == "enum" and "propertyNames" in error.schema_path:
        allowed = ", ".join(error.validator_value)
        return [f"{prefix}{error.instance}: not a key of this source (its keys: {allowed})"]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        return [f"{prefix}{key}: required key is missing" for key in missing]
    if error.validator == "type":
        hint = _type_hint(error.instance, error.validator_value)
        if hint:
            return [f"{where}: {hint}"]
    return [f"{where}: {error.message}"]


def _type_hint(value: Any, expected: str | list[str]) -> str | None:
    """A message for the two type errors that YAML makes easy: ``2.0`` for an integer and
    ``1e-3`` (a string to YAML 1.1) for a number."""
    kinds = [expected] if isinstance(expected, str) else list(expected)
    if "integer" in kinds and isinstance(value, float):
        fix = f": write {int(value)}" if value.is_integer() else ""
        return f"{value!r} is a float; this key takes an integer{fix}"
    if "number" in kinds and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return None
        mantissa, _, exponent = value.lower().partition("e")
        if exponent and "." not in mantissa:
            fixed = f"{mantissa}.0e{exponent}"
            return (
                f"{value!r} is a string (YAML reads an exponent without a decimal point as "
                f"text): write {fixed}"
            )
        return f"{value!r} is a string; write the number without quotes"
    return None


def non_finite_errors(value: Any, where: str = "") -> list[str]:
    """Every ``.nan``, ``.inf`` or ``-.inf`` in ``value`` as ``key.path: what to do``.

    The schema's ranges let them through (NaN compares false with every bound, infinity
    passes a minimum), yet no params key can mean one: a NaN learning rate or tolerance
    trains or checks nothing while looking valid.
    """
    found: list[str] = []

    def walk(node: Any, parts: list[Any]) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                walk(item, [*parts, key])
        elif isinstance(node, list | tuple):
            for index, item in enumerate(node):
                walk(item, [*parts, index])
        elif isinstance(node, float) and not math.isfinite(node):
            found.append(
                f"{_key_path(parts, where)}: {node!r} is not a finite number; write a number "
                "(or null where the key allows it)"
            )

    walk(value, [])
    return found


def schema_errors(
    params: Any, schema: dict[str, Any] | None = None, require_all: bool = True, where: str = ""
) -> list[str]:
    """Every schema violation as ``key.path: what is wrong`` (empty when ``params`` is valid).

    With ``require_all=False`` top-level sections may be absent (a stage run on a partial
    file checks only what is there; its own ``section`` call reports a missing section).
    ``where`` prefixes the key paths (the dotted section a sub-schema describes).
    """
    schema = load_schema() if schema is None else copy.deepcopy(schema)
    if not require_all:
        schema.pop("required", None)
    validator = _validator_class()(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: [str(p) for p in e.path])
    lines = [line for error in errors for line in _describe(error, where)]
    lines += non_finite_errors(params, where)
    unknown = {line.split(": ", 1)[0] for line in lines if ": unknown key" in line}
    return [
        line
        for line in lines
        if ": not a key of" not in line or line.split(": ", 1)[0] not in unknown
    ]


def dataset_spec(name: str, spec: Any) -> dict[str, Any]:
    """Dataset ``name``'s spec (an entry of ``datasets``) checked against the schema, with the
    schema's defaults for the keys its source takes filled in."""
    root = load_schema()
    where = f"datasets.{name}"
    problems = schema_errors(spec, {"$ref": "#/$defs/dataset", "$defs": root["$defs"]}, where=where)
    if problems:
        raise ConfigError("; ".join(problems))
    node = root["$defs"]["dataset"]
    (branch,) = [
        rule["then"]
        for rule in node["allOf"]
        if rule["if"]["properties"]["source"]["const"] == spec["source"]
    ]
    allowed = set(branch["propertyNames"]["enum"])
    filled = dict(spec)
    for properties in (node["properties"], branch.get("properties", {})):
        for key, rule in properties.items():
            if key in allowed and "default" in rule:
                filled.setdefault(key, copy.deepcopy(rule["default"]))
    return filled


def section_schema(where: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The schema of the dotted params section ``where`` (e.g. ``search.eval``), with the
    shared ``$defs`` so its references resolve."""
    root = load_schema() if schema is None else schema
    node = root
    for key in where.split("."):
        properties = node.get("properties", {})
        if key not in properties:
            raise ConfigError(f"the params schema has no section {where!r}")
        node = properties[key]
    return {**node, "$defs": root.get("$defs", {})}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """A validated params value in the shape of the field type ``hint``: lists become tuples
    of the element types, mappings become the nested config dataclass."""
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, {})
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        return _coerce(value, options[0], where) if len(options) == 1 else value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(kind(item) for kind, item in zip(get_args(hint), value, strict=True))
    return value


def _build(cls: type[T], values: dict[str, Any], where: str, fixed: dict[str, Any]) -> T:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in fixed:
            kwargs[field.name] = fixed[field.name]
        elif field.name in values:
            name = f"{where}.{field.name}"
            kwargs[field.name] = _coerce(values[field.name], hints[field.name], name)
        else:
            raise ConfigError(f"{where}.{field.name}: required key is missing")
    config = cls(**kwargs)
    check = getattr(config, "check", None)
    if check is not None:
        check(where)
    return config


def load_config(cls: type[T], values: Any, where: str, **fixed: Any) -> T:
    """The typed config ``cls`` (a dataclass) from the params section ``where``.

    ``values`` is checked against the schema of ``where`` (ranges, types, unknown keys: the
    schema is the one place for them), then each field of ``cls`` takes its value from
    ``fixed`` (values from outside the section, e.g. the root seed) or from ``values``; keys
    of the section that are not fields (read by the stage itself) are left out. The config's
    own ``check(where)``, if any (nested configs' too), then applies the rules that relate
    several fields.
    """
    problems = schema_errors(values, section_schema(where), where=where)
    if problems:
        raise ConfigError("; ".join(problems))
    return _build(cls, values, where, fixed)


def reference_errors(params: Any) -> list[str]:
    """Keys that name a dataset (``split.dataset``, ``train.dataset``) must name one under
    ``datasets:`` (checked when both are in ``params``)."""
    datasets = params.get("datasets") if isinstance(params, dict) else None
    if not isinstance(datasets, dict):
        return []
    known = ", ".join(sorted(datasets))
    problems = []
    for key in DATASET_REFERENCES:
        section_name, name = key.split(".")
        spec = params.get(section_name)
        value = spec.get(name) if isinstance(spec, dict) else None
        if isinstance(value, str) and value not in datasets:
            problems.append(
                f"{key}: {value!r} is not a dataset under datasets: (known: {known}); "
                "name one of those or add it there"
            )
    return problems


def validate_params(
    params: Any,
    path: str | Path = "params.yaml",
    schema: dict[str, Any] | None = None,
    require_all: bool = True,
) -> None:
    """Raise ``ConfigError`` naming ``path`` and every offending key path (the schema, then
    the references between sections)."""
    problems = schema_errors(params, schema, require_all=require_all)
    problems += reference_errors(params)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))


def load_params(
    path: str | Path = "params.yaml", validate: bool = True, require_all: bool = False
) -> dict[str, Any]:
    """Read the params file with the safe loader; it must be a mapping valid for the schema.
    A configuration overlay (``configs/<name>.yaml`` beside a ``base.yaml``) is read merged
    with its base (``segnas.named_configs``)."""
    if is_overlay(path):
        from .named_configs import load_rendered

        params = load_rendered(path)
    else:
        params = read_yaml(path)
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {params!r}")
    if validate:
        validate_params(params, path, require_all=require_all)
    return params


def section(params: dict[str, Any], key: str, path: str | Path = "params.yaml") -> dict[str, Any]:
    """Return ``params[key]``, which must be a mapping, with an error naming the key."""
    value = params.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section {key!r} is missing or not a mapping")
    return value


def setting(params: dict[str, Any], key: str, path: str | Path = "params.yaml") -> Any:
    """Return the top-level value ``params[key]`` (e.g. ``seed``), with an error naming the key
    when the file lacks it."""
    if key not in params:
        raise ConfigError(f"{path}: {key!r} is missing (a top-level key)")
    return params[key]


def is_overlay(path: str | Path) -> bool:
    """Whether ``path`` is a configuration overlay: a YAML file beside a ``base.yaml``."""
    path = Path(path)
    return path.stem != "base" and (path.parent / "base.yaml").is_file()


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted key paths whose values differ between two params mappings."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object()))
