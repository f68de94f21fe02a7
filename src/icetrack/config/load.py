"""Configuration: schema validation with one readable line per problem, the glacier
table, and per-glacier overrides. Runs before any job (from the Snakefile)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from icetrack.config.errors import ConfigError  # noqa: F401 - re-exported: icetrack.config.load.ConfigError is the public name


def _with_defaults(validator_class):
    """A validator that also fills in schema defaults (the standard jsonschema recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error: jsonschema.ValidationError, root: str) -> str:
    path = ".".join([root, *map(str, error.absolute_path)])
    if error.validator == "additionalProperties":
        return f"{path}: {error.message} (check the spelling against the schema)"
    if error.validator == "required":
        return f"{path}: {error.message}"
    expected = error.schema.get("description")
    if error.validator == "format":  # jsonschema says only "is not a 'date'"
        expected = {"date": "a date as YYYY-MM-DD"}.get(error.validator_value, expected)
    value = json.dumps(error.instance, default=str)
    value = value if len(value) <= 60 else value[:57] + "…"
    hint = f" — expected {expected}" if expected else ""
    return f"{path} = {value}: {error.message}{hint}"


def validate(instance: dict, schema_path: str | Path, root: str = "config") -> dict:
    """Validate ``instance`` (filling defaults in place); raise ConfigError naming every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    cls = _with_defaults(jsonschema.Draft202012Validator)
    errors = sorted(cls(schema, format_checker=jsonschema.FormatChecker()).iter_errors(instance),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("; ".join(_describe(e, root) for e in errors))
    return instance


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_glacier_table(path: str | Path, schema_path: str | Path, config: dict) -> dict[str, dict[str, Any]]:
    """The glacier table as {glacier_id: row}, every row validated and cross-checked."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"glaciers_table = {str(path)!r}: file not found")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ConfigError(f"glaciers_table = {str(path)!r}: cannot be read as a tab-separated table "
                          f"({str(e).splitlines()[0][:120]})") from None
    glaciers: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        row = {k: v.strip() for k, v in raw.items() if isinstance(v, str) and v.strip()}
        where = f"{path.name} line {i}"
        validate(row, schema_path, root=where)
        gid = row["glacier_id"]
        if gid in glaciers:
            raise ConfigError(f"{where}: glacier_id = {gid!r} is a duplicate; ids must be unique")
        if row["source"] not in config["sources"]:
            raise ConfigError(f"{where}: source = {row['source']!r} is not a key of config 'sources' "
                              f"(known: {', '.join(sorted(config['sources']))})")
        if date.fromisoformat(row["end_date"]) < date.fromisoformat(row["start_date"]):
            raise ConfigError(f"{where}: end_date = {row['end_date']} is before start_date = {row['start_date']}")
        if "outline" not in row and "bbox" not in row:
            raise ConfigError(f"{where}: glacier {gid!r} needs an 'outline' file or a 'bbox'")
        if "bbox" in row:
            row["bbox"] = _parse_bbox(row["bbox"], where)
        overrides = {}
        if "overrides" in row:
            try:
                overrides = json.loads(row["overrides"])
            except json.JSONDecodeError as e:
                raise ConfigError(f"{where}: overrides = {row['overrides']!r} is not valid JSON ({e.msg})") from None
            if not isinstance(overrides, dict):
                raise ConfigError(f"{where}: overrides must be a JSON object like {{\"tracking\": {{\"chip_px\": 64}}}}")
        row["overrides"] = overrides
        glaciers[gid] = row
    if not glaciers:
        raise ConfigError(f"glaciers_table = {str(path)!r}: no glacier rows")
    return glaciers


def _parse_bbox(text: str, where: str) -> list[float]:
    try:
        bbox = [float(v) for v in text.split(",")]
    except ValueError:
        bbox = []
    if len(bbox) != 4:
        raise ConfigError(f"{where}: bbox = {text!r}: expected 'min_lon,min_lat,max_lon,max_lat'")
    w, s, e, n = bbox
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise ConfigError(f"{where}: bbox = {text!r}: longitudes must be within ±180 and latitudes within ±90")
    if s >= n:
        raise ConfigError(f"{where}: bbox = {text!r}: min_lat must be below max_lat")
    if w >= e:
        raise ConfigError(f"{where}: bbox = {text!r}: min_lon must be below max_lon (a bbox crossing the "
                          "antimeridian is not supported; split the glacier or use an outline)")
    return bbox


def selected_glaciers(config: dict, glaciers: dict[str, dict]) -> list[str]:
    """The glacier ids to run: config 'glaciers' ("all", "a,b" or a list)."""
    wanted = config.get("glaciers", "all")
    if wanted == "all":
        return list(glaciers)
    ids = [g.strip() for g in (wanted.split(",") if isinstance(wanted, str) else wanted) if g.strip()]
    unknown = [g for g in ids if g not in glaciers]
    if unknown:
        raise ConfigError(f"glaciers = {wanted!r}: unknown glacier id(s) {', '.join(unknown)}; "
                          f"the table has {', '.join(glaciers)}")
    return ids


def effective(config: dict, glacier: dict, block: str) -> dict:
    """Config ``block`` with the glacier's overrides applied: what that glacier's rules receive."""
    return deep_merge(config[block], glacier.get("overrides", {}).get(block, {}))
