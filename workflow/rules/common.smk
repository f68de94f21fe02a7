# Shared set-up: config validation (before any job runs), the glacier table, and the
# input/param functions every step uses. Rules get config only through `params:`, one
# plain dict per config block, so a changed value re-runs exactly the rules using it.
import json
import os
import sys
from pathlib import Path

import pandas as pd

# The package is pure Python in src/: make it importable by every rule script, in this
# interpreter or in a per-rule conda env, without an install step.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
# GDAL's block cache defaults to 5 % of the machine's RAM (1.2 GB on 24 GB), which a full
# scene fills: cap it so that a job's memory is what resources.py computes (MB).
os.environ.setdefault("GDAL_CACHEMAX", "256")


# Declared so that executors (Slurm, Kubernetes) pass it on to remote jobs.
envvars:
    "PYTHONPATH",
    "GDAL_CACHEMAX",


from icetrack.config.checks import prepare
from icetrack.config.load import ConfigError, effective
from icetrack.cluster.resources import mem_mb, runtime  # resources: sized from each job's inputs
from icetrack.access.sources import resolve_source


configfile: "config/config.yaml"


SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"
try:  # schema, glacier table, selection, overrides, cross-field rules, local files
    GLACIERS, SELECTED = prepare(config, SCHEMAS)
except ConfigError as error:
    sys.exit(f"icetrack: configuration error: {error}")


wildcard_constraints:
    glacier="[A-Za-z0-9][A-Za-z0-9_.-]*",
    date=r"\d{8}",
    pair=r"\d{8}_\d{8}",


def block(name):
    """params: function giving one config block with the glacier's overrides applied."""
    return lambda w: effective(config, GLACIERS[w.glacier], name)


def reference_files(block_name, section):
    """Input function: the reference_vx/reference_vy GeoTIFFs named in ``<block>.<section>``
    (a glacier's overrides applied); none when unset. As inputs, a changed or newly made
    reference map re-runs the rule, and Snakemake makes it first if a rule writes it."""

    def files(w):
        chosen = block(block_name)(w).get(section) or {}
        return [path for key in ("reference_vx", "reference_vy") if (path := chosen.get(key))]

    return files


def pair_dates(w):
    """The filtered reference and secondary images of a pair."""
    ref, sec = w.pair.split("_")
    return {"ref": f"results/{w.glacier}/filtered/{ref}.tif", "sec": f"results/{w.glacier}/filtered/{sec}.tif"}


def glacier_source(w):
    """The glacier's source with its preset filled in (icetrack.access.sources): rules record the values."""
    return resolve_source(config["sources"][GLACIERS[w.glacier]["source"]])


def glacier_geometry(w):
    """The glacier's outline/bbox/stable ground/CRS fields, as plain values."""
    g = GLACIERS[w.glacier]
    return {k: g.get(k, "") for k in ("outline", "bbox", "stable_ground", "crs", "start_date", "end_date")}


def glacier_files(w):
    """Local files a glacier's rules read (outline, stable ground)."""
    g = GLACIERS[w.glacier]
    return [g[k] for k in ("outline", "stable_ground") if g.get(k)]


def query_inputs(w):
    """Local files the query reads: the geometry, and a static catalogue when there is one."""
    source = glacier_source(w)
    inputs = {"geometry": glacier_files(w)}
    if source["type"] in ("demo", "stac_static") and "://" not in source["catalog"]:
        inputs["catalog"] = source["catalog"]
    elif source["type"] == "local_files":
        inputs["catalog"] = f"results/{w.glacier}/local_catalog/catalog.json"
    return inputs


def pairs_table(glacier):
    """The chosen pairs of a glacier (available once its select_pairs checkpoint ran)."""
    path = checkpoints.select_pairs.get(glacier=glacier).output[0]
    return pd.read_csv(path, dtype=str)


def query_result(glacier):
    """The glacier's scenes.csv. Before the query ran (main process) this waits for the
    select_pairs checkpoint; once it exists it is read directly, because inside a cluster
    job (a Slurm job runs only its own rules) the checkpoint counts as not run and a
    params function may not depend on it."""
    path = f"results/{glacier}/scenes.csv"
    if not os.path.exists(path):
        pairs_table(glacier)  # raises "incomplete checkpoint": Snakemake schedules query + select_pairs
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def scenes_of_date(w):
    """hrefs of the scenes of one date, read from the query result (after the checkpoint)."""
    scenes = query_result(w.glacier)
    rows = scenes[scenes["date"] == w.date].sort_values("id")
    out = {"ids": rows["id"].tolist(), "hrefs": rows["href"].tolist(), "cloud_hrefs": rows["cloud_href"].tolist()}
    # Each scene's own DN scale/offset (its STAC raster:bands, else the source's), from the query.
    for column, key in (("scale", "scales"), ("offset", "offsets")):
        if column in rows and (rows[column] != "").all():
            out[key] = [float(v) for v in rows[column]]
    # Optional columns (STAC file:size, file:checksum of the band asset): verified by the download cache.
    if "size_bytes" in rows:
        out["sizes_bytes"] = [int(v) if v.isdigit() else None for v in rows["size_bytes"]]
    if "checksum" in rows:
        out["checksums"] = [v or None for v in rows["checksum"]]
    return out


PAIR_OUTPUTS = ["vx.tif", "vy.tif", "v.tif", "velocity.nc", "quality.json", "speed.png", "quality.png"]
GLACIER_OUTPUTS = ["cube.nc", "quality_summary.csv", "report/scenes.html", "report/pairs.html", "report/quality.html"]


def glacier_outputs(gid):
    """Input function of one glacier's outputs. The `all` target takes one per glacier, as Snakemake
    resolves each input function on its own, so every glacier's select_pairs checkpoint is
    scheduled at once (one function for all would stop at the first glacier whose pairs are
    not known yet, and the glaciers' queries would run one after the other)."""

    def outputs(wildcards):
        out = [f"results/{gid}/scenes.csv", f"results/{gid}/pairs.csv"]
        out += [f"results/{gid}/{name}" for name in GLACIER_OUTPUTS]
        if GLACIERS[gid].get("points"):
            out += [f"results/{gid}/timeseries.csv", f"results/{gid}/timeseries.png"]
        for pair in pairs_table(gid)["pair"]:
            out += [f"results/{gid}/{pair}/{name}" for name in PAIR_OUTPUTS]
        out += reference_outputs(gid, pairs_table(gid)["pair"])  # reference.smk; none unless configured
        return out

    return outputs


onsuccess:
    # Say what the run produced per glacier: an empty result is reported, never silent.
    from icetrack.postprocess.outcome import run_summary

    for _line in run_summary(SELECTED):
        print(_line, file=sys.stderr)


def pair_provenance(w):
    """params: what a pair's outputs record to be reproducible — the effective config blocks
    that determine the map and the input scene ids (redacted: never credentials)."""
    from icetrack.common.provenance import redact

    blocks = {name: effective(config, GLACIERS[w.glacier], name) for name in ("grid", "filter", "tracking", "postprocess")}
    blocks["source"] = glacier_source(w)
    blocks["glacier"] = {"glacier_id": w.glacier, **glacier_geometry(w)}
    scenes = query_result(w.glacier)
    ids = lambda d: sorted(scenes.loc[scenes["date"] == d, "id"])  # noqa: E731
    ref, sec = w.pair.split("_")
    return {"config": redact(blocks), "scene_ids_img1": ids(ref), "scene_ids_img2": ids(sec)}


# The optional ITS_LIVE reference (rules in reference.smk).
def reference_on(glacier):
    return effective(config, GLACIERS[glacier], "reference")["source"] != "none"


REFERENCE_MAPS = ["reference/itslive_vx.tif", "reference/itslive_vy.tif", "reference/itslive_v.tif"]


def reference_outputs(glacier, pairs):
    """What `all` asks of a glacier's reference: its maps and one comparison figure per pair."""
    if not reference_on(glacier):
        return []
    return [f"results/{glacier}/{name}" for name in REFERENCE_MAPS] + [
        f"results/{glacier}/{pair}/reference_comparison.png" for pair in pairs
    ]


def timeseries_reference(w):
    """The time series' reference: the ITS_LIVE point series when configured, else the
    glacier table's `reference` column (a CSV or raster), else none."""
    if reference_on(w.glacier):
        return {"reference": f"results/{w.glacier}/reference/itslive_points.csv"}
    path = GLACIERS[w.glacier].get("reference")
    return {"reference": path} if path else {}
