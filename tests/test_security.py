"""Config values cannot escape results/ or reach a shell.

Glacier ids become folder names, so hostile ids are refused before any job; rules run
Python through ``script:`` (values arrive as ``snakemake.params``), and a scan of every
rule and script keeps it that way: no ``shell:`` directive interpolating config or
params unquoted, no ``shell=True``/``os.system``/``os.popen`` anywhere.
"""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from conftest import REPO, copy_workflow, snakemake
from icetrack.config.checks import GLACIER_ID, check_glacier_id
from icetrack.config.load import ConfigError
from icetrack.access.local_files import write_local_catalog

HOSTILE_IDS = ["../evil", "..", "/etc", "a/b", "a b", "a;rm -rf ~", "$(id)", "`id`", "-rf", ".hidden", "a..b",
               "a|b", "a>b", "a\nb", "a\n", "ü", "a*", ""]
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
PY_FILES = [*sorted((REPO / "scripts").glob("*.py")), *sorted((REPO / "src").rglob("*.py"))]


@pytest.mark.parametrize("gid", HOSTILE_IDS)
def test_hostile_glacier_ids_are_refused(gid):
    with pytest.raises(ConfigError, match="glacier_id"):
        check_glacier_id(gid)


@pytest.mark.parametrize("gid", ["demo", "RGI60-01.13696", "perito_moreno", "G2"])
def test_accepted_ids_stay_inside_results(gid, tmp_path):
    check_glacier_id(gid)
    results = (tmp_path / "results").resolve()
    assert (results / gid).resolve().parent == results


def test_wildcard_constraint_matches_the_id_pattern():
    """The glacier wildcard is constrained to the same pattern, so no other value can
    be produced by a rule's output path either."""
    common = (REPO / "workflow/rules/common.smk").read_text()
    constraint = re.search(r'glacier="([^"]+)"', common).group(1)
    assert "^" + constraint + "$" == GLACIER_ID.pattern


def test_hostile_glacier_selection_through_snakemake(tmp_path):
    work = copy_workflow(tmp_path)
    proc = snakemake(work, "-n", "--config", "glaciers=../../etc", check=False)
    assert proc.returncode != 0 and "unknown glacier id(s) ../../etc" in proc.stderr
    assert "Traceback" not in proc.stderr and not (work / "results").exists()


def _directives(text: str, name: str) -> list[str]:
    """Bodies of ``name:`` directives in a Snakemake file (indented block after the keyword)."""
    bodies, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^(\s+){name}:\s*(.*)$", line)
        if not m:
            continue
        indent, body = len(m.group(1)), [m.group(2)]
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        bodies.append("\n".join(body))
    return bodies


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_never_interpolate_config_into_a_shell(path):
    text = path.read_text()
    for body in _directives(text, "shell"):
        # Any interpolated value must be quoted ({params.x:q}); config must go through params.
        assert "{config" not in body, f"{path.name}: shell: reads config directly:\n{body}"
        for field in re.findall(r"\{([^{}]+)\}", body):
            if field.split(".")[0] in ("params", "wildcards", "input", "output", "log"):
                assert field.endswith(":q"), f"{path.name}: unquoted {{{field}}} in shell:\n{body}"
    for body in _directives(text, "run"):
        assert not re.search(r"\bshell\(|os\.system|subprocess", body), f"{path.name}: run: starts a shell:\n{body}"


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_python_never_starts_a_shell(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            assert func not in ("os.system", "os.popen", "shell"), f"{path}: {func}()"
            for kw in node.keywords:
                assert not (kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value), \
                    f"{path}: {func}(shell=True)"


def test_rules_read_config_only_through_params():
    """Scripts get values from snakemake.params (plain data), never snakemake.config — but for
    the network settings, read in one place (icetrack.common.logs.network_settings) because they change
    no output and so must not be re-run triggers."""
    for path in [*(REPO / "scripts").glob("*.py"), *(REPO / "src/icetrack").rglob("*.py")]:
        uses = path.read_text().count("snakemake.config")
        assert uses == (1 if path.name == "logs.py" else 0), path.name


def test_local_file_names_cannot_escape_the_catalogue(tmp_path):
    """Odd file names and ../ paths in sources.files are read where they are, and the
    catalogue written from them stays in its own folder."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    files = []
    for i, name in enumerate(["..tif", "a b;$(id).tif", "../x.tif".replace("/", "_")]):
        path = outside / name
        with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8", crs="EPSG:32718",
                           transform=Affine(10, 0, 600000, 0, -10, 4400000)) as dst:
            dst.write(np.ones((1, 8, 8), np.uint8))
        files.append({"path": str(Path("..") / "elsewhere" / name), "date": date(2024, 1, 1 + i).isoformat()})
    work = tmp_path / "work"
    work.mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(work)
    try:
        before = set(tmp_path.rglob("*"))
        write_local_catalog(files, "results/g/local_catalog/catalog.json")
        created = set(tmp_path.rglob("*")) - before
    finally:
        os.chdir(cwd)
    catalog_dir = (work / "results/g/local_catalog").resolve()
    assert created and all(p.resolve().is_relative_to(work / "results") for p in created), created
    assert (catalog_dir / "catalog.json").exists()
