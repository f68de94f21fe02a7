"""Pair selection from a scene table, and the config of sources and pairs (presets,
misspelt keys, bad values refused with the field named)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from icetrack.config.load import ConfigError, validate
from icetrack.query.pairs import select_pairs
from icetrack.access.sources import PRESETS, cloud_rule, cloudy_pixels, fill_pixels, resolve_source

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def scene_table(rows: list[tuple[str, float, str]], observed: float = 1.0) -> pd.DataFrame:
    """(date YYYYMMDD, glacier cloud fraction, orbit) → a scene table as query writes it."""
    return pd.DataFrame([dict(id=f"S_{d}_{o}", date=d, cloud_fraction_glacier=c, glacier_observed_fraction=observed,
                              orbit=o) for d, c, o in rows])


DEFAULTS = dict(min_dt_days=10, max_dt_days=40, max_cloud_fraction=0.5, max_pairs=20)


def test_separation_bounds_and_cloud_limit():
    scenes = scene_table([("20240101", 0.0, "96"), ("20240111", 0.1, "96"), ("20240121", 0.9, "96"),
                          ("20240215", 0.0, "96")])
    pairs = select_pairs(scenes, **DEFAULTS)
    # 0121 is too cloudy; 0101-0215 (45 d) too long; 0101-0111 (10 d) and 0111-0215 (35 d) kept
    assert list(pairs["pair"]) == ["20240101_20240111", "20240111_20240215"]
    assert list(pairs["dt_days"].astype(int)) == [10, 35]


def test_tiles_of_one_date_are_one_date_and_the_worst_cloud_counts():
    scenes = scene_table([("20240101", 0.0, "96"), ("20240101", 0.6, "96"), ("20240120", 0.0, "96")])
    assert select_pairs(scenes, **DEFAULTS).empty  # 0101's worst tile is 0.6 over the glacier
    scenes.loc[1, "cloud_fraction_glacier"] = 0.3
    pairs = select_pairs(scenes, **DEFAULTS)
    assert list(pairs["ref_ids"]) == ["S_20240101_96;S_20240101_96"]
    assert pairs["cloud_fraction_max"].iloc[0] == 0.3


def test_observed_fraction_and_months():
    scenes = scene_table([("20240105", 0.0, "1"), ("20240125", 0.0, "1"), ("20240301", 0.0, "1"),
                          ("20240320", 0.0, "1")])
    assert select_pairs(scenes, **DEFAULTS, min_observed_fraction=0.5).shape[0] == 3
    assert select_pairs(scene_table(scenes[["date"]].assign(c=0.0, o="1").values.tolist(), observed=0.3),
                        **DEFAULTS, min_observed_fraction=0.5).empty
    march = select_pairs(scenes, **DEFAULTS, months=[3])
    assert list(march["pair"]) == ["20240301_20240320"]  # both dates must be in season


def test_same_orbit_required_preferred_or_ignored():
    scenes = scene_table([("20240101", 0.2, "96"), ("20240111", 0.0, "53"), ("20240121", 0.1, "96")])
    ignored = select_pairs(scenes, **{**DEFAULTS, "max_pairs": 1}, same_orbit=False)
    assert list(ignored["pair"]) == ["20240111_20240121"]  # least cloudy wins, whatever the orbit
    preferred = select_pairs(scenes, **{**DEFAULTS, "max_pairs": 1}, same_orbit="prefer")
    assert list(preferred["pair"]) == ["20240101_20240121"]  # same orbit 96 first, though cloudier
    required = select_pairs(scenes, **DEFAULTS, same_orbit=True)
    assert list(required["pair"]) == ["20240101_20240121"] and required["same_orbit"].all()
    with pytest.raises(ValueError, match="same_orbit"):
        select_pairs(scenes, **DEFAULTS, same_orbit="sometimes")


def test_cap_keeps_the_least_cloudy_then_shortest_pairs():
    days = pd.date_range("2024-01-01", periods=8, freq="5D").strftime("%Y%m%d")
    clouds = [0.0, 0.3, 0.0, 0.1, 0.0, 0.2, 0.0, 0.4]
    scenes = scene_table([(d, c, "96") for d, c in zip(days, clouds)])
    every = select_pairs(scenes, **{**DEFAULTS, "max_pairs": 100})
    capped = select_pairs(scenes, **{**DEFAULTS, "max_pairs": 5})
    assert len(capped) == 5 and len(every) > 5
    best = every.sort_values(["cloud_fraction_max", "dt_days", "pair"]).head(5)
    assert sorted(capped["pair"]) == sorted(best["pair"])
    assert (capped["cloud_fraction_max"] == 0.0).all()


# ---------------------------------------------------------------- cloud rules
def test_qa_pixel_bits_are_flags_not_classes_and_snow_is_never_cloud():
    rule = cloud_rule(PRESETS["usgs_landsat_c2l1"])
    qa = np.array([1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, (1 << 6) | (3 << 8), 21824, (1 << 5) | (1 << 3)])
    assert cloudy_pixels(qa, rule).tolist() == [False, True, True, True, True, False, False, False, True]
    assert fill_pixels(qa, rule).tolist() == [True] + [False] * 8
    assert cloud_rule(PRESETS["earth_search_s2"]) == {"classes": [0, 1, 3, 8, 9, 10]}  # SCL 11 (snow/ice) kept


# ---------------------------------------------------------------- config of sources and pairs
def config_with(source: dict | None = None, **pairs) -> dict:
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if source is not None:
        cfg["sources"]["s"] = source
    cfg["pairs"].update(pairs)
    return copy.deepcopy(cfg)


def test_shipped_config_sources_are_valid_presets():
    cfg = validate(config_with(), SCHEMA)
    presets = {s.get("preset") for s in cfg["sources"].values()}
    assert {"earth_search_s2", "planetary_computer_landsat", "usgs_landsat_c2l1"} <= presets


def test_a_preset_fills_in_the_source_and_config_keys_win():
    src = resolve_source({"type": "stac_api", "preset": "earth_search_s2", "url": "http://127.0.0.1:1/", "band_asset": "red"})
    assert src["url"] == "http://127.0.0.1:1/" and src["band_asset"] == "red"
    assert src["collections"] == ["sentinel-2-c1-l2a"] and src["cloud_asset"] == "scl"
    validate(config_with({"type": "stac_api", "preset": "planetary_computer_landsat"}), SCHEMA)  # url, assets from preset


@pytest.mark.parametrize("source, pairs, expected", [
    ({"type": "stac_api", "preset": "earth_search_s3"}, {}, ["config.sources.s.preset", "earth_search_s3", "earth_search_s2"]),
    ({"type": "stac_api", "preset": "earth_search_s2", "colections": ["x"]}, {},
     ["config.sources.s", "'colections' was unexpected", "spelling"]),
    ({"type": "stac_api", "preset": "usgs_landsat_c2l1", "aws_secret_access_key": "x"}, {},
     ["config.sources.s", "'aws_secret_access_key' was unexpected"]),
    ({"type": "stac_api", "band_asset": "nir"}, {}, ["config.sources.s", "'url' is a required property"]),
    ({"type": "stac_api", "url": "http://x"}, {}, ["config.sources.s", "'band_asset' is a required property"]),
    ({"type": "stac_api", "preset": "earth_search_s2", "url": "earth-search.aws.element84.com/v1"}, {},
     ["config.sources.s.url", "http"]),
    ({"type": "stac_api", "preset": "usgs_landsat_c2l1", "cloud_bits": [3, 16]}, {},
     ["config.sources.s.cloud_bits.1 = 16", "maximum of 15"]),
    ({"type": "stac_api", "preset": "earth_search_s2", "page_size": 0}, {}, ["config.sources.s.page_size = 0"]),
    (None, {"same_orbit": "maybe"}, ["config.pairs.same_orbit", '"maybe"', "prefer"]),
    (None, {"months": [0]}, ["config.pairs.months.0 = 0", "minimum of 1"]),
    (None, {"max_cloud_fraction": 1.5}, ["config.pairs.max_cloud_fraction = 1.5", "cloudy share"]),
])
def test_bad_source_or_pairs_config_names_the_field(source, pairs, expected):
    with pytest.raises(ConfigError) as err:
        validate(config_with(source, **pairs), SCHEMA)
    message = str(err.value)
    print(message)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


def test_snakemake_refuses_an_unknown_preset_in_one_line_before_any_job(tmp_path):
    from conftest import copy_workflow, snakemake

    work = copy_workflow(tmp_path)
    (work / "bad.yaml").write_text(yaml.safe_dump({"sources": {"sentinel2": {"type": "stac_api", "preset": "sentinel2"}}}))
    proc = snakemake(work, "-n", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "icetrack: configuration error:" in ln]
    assert len(lines) == 1 and "config.sources.sentinel2.preset" in lines[0] and "earth_search_s2" in lines[0], \
        proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (work / "results").exists()
