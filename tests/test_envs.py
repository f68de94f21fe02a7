"""Static checks of the conda environments (no conda channel is reachable here).

Every rule names an env file; each file pins conda-forge (with nodefaults) and versions;
and every module a rule's script imports — followed through ``icetrack.*`` into the
package, transitively, including imports inside functions — is provided by that rule's
env. This is what `snakemake --sdm conda` would otherwise find out one failed job at a time.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
SRC = REPO / "src"

# import name → conda-forge package providing it
CONDA_PACKAGE = {
    "affine": "affine", "cv2": "py-opencv", "jsonschema": "jsonschema", "matplotlib": "matplotlib-base",
    "netCDF4": "netcdf4", "numba": "numba", "numpy": "numpy", "pandas": "pandas", "pyproj": "pyproj",
    "pystac": "pystac", "pystac_client": "pystac-client", "rasterio": "rasterio", "scipy": "scipy",
    "shapely": "shapely", "skimage": "scikit-image", "tqdm": "tqdm", "xarray": "xarray", "yaml": "pyyaml",
    "h5netcdf": "h5netcdf", "glaft": "glaft", "requests": "requests", "urllib3": "urllib3",
    "zarr": "zarr", "numcodecs": "numcodecs", "fsspec": "fsspec", "aiohttp": "aiohttp",
}
# Modules needed at run time without an import statement: xarray writes NetCDF through an engine.
IMPLIED = {"xarray": ["netCDF4"]}
# Provided by the running Snakemake (its search path is appended to the script's sys.path).
FROM_SNAKEMAKE = {"snakemake"}


def rule_blocks() -> dict[str, str]:
    """{rule name: its text} for every rule and checkpoint of workflow/rules/*.smk."""
    blocks = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", text, re.S | re.M):
            blocks[m.group(1)] = m.group(2)
    return blocks


def directive(block: str, name: str) -> str | None:
    """The quoted value of a rule directive written on the line after ``name:``."""
    m = re.search(rf"^\s+{name}:\s*\n\s+\"([^\"]+)\"", block, re.M)
    return m.group(1) if m else None


def module_file(name: str) -> Path | None:
    """The source file of an ``icetrack`` module (``None`` for a name inside a module)."""
    p = SRC.joinpath(*name.split("."))
    if (p / "__init__.py").exists():
        return p / "__init__.py"
    return p.with_suffix(".py") if p.with_suffix(".py").exists() else None


def imported_names(path: Path, module: str | None) -> set[str]:
    """Absolute names imported anywhere in a file (relative imports resolved against ``module``)."""
    package = None if module is None else (module if path.name == "__init__.py" else module.rsplit(".", 1)[0])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            names |= {base} | {f"{base}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return names


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a script needs, following icetrack imports transitively."""
    needed, seen, todo = set(), set(), [(script, None)]
    while todo:
        path, module = todo.pop()
        for name in imported_names(path, module):
            top = name.split(".")[0]
            if top == "icetrack":
                if name not in seen and (f := module_file(name)):
                    seen.add(name)
                    todo.append((f, name))
            elif top not in sys.stdlib_module_names and top not in FROM_SNAKEMAKE:
                needed.add(top)
    for name in list(needed):
        needed |= set(IMPLIED.get(name, []))
    return needed


def env_packages(env_file: Path) -> dict[str, str]:
    """{conda package: pinned version} of an env file's dependencies."""
    spec = yaml.safe_load(env_file.read_text())
    pins = {}
    for dep in spec["dependencies"]:
        assert isinstance(dep, str), f"{env_file.name}: nested dependency lists (pip:) are not allowed: {dep}"
        name, _, version = dep.partition("=")
        pins[name.strip()] = version.strip()
    return pins


RULE_BLOCKS = rule_blocks()


def test_rules_found():
    assert {"query", "fetch", "filter_scene", "track", "postprocess", "export_geotiff", "cube"} <= set(RULE_BLOCKS)


@pytest.mark.parametrize("rule", sorted(RULE_BLOCKS))
def test_rule_env_provides_every_import_of_its_script(rule):
    block = RULE_BLOCKS[rule]
    env, script = directive(block, "conda"), directive(block, "script")
    assert env, f"rule {rule}: no conda: env file"
    env_file = (RULES / env).resolve()
    assert env_file.exists(), f"rule {rule}: conda env {env} does not exist"
    assert script, f"rule {rule}: no script: (a shell/run rule needs its own import check)"
    needed = third_party_imports((RULES / script).resolve())
    unknown = needed - set(CONDA_PACKAGE)
    assert not unknown, f"rule {rule}: add the conda package of {sorted(unknown)} to CONDA_PACKAGE"
    provided = set(env_packages(env_file))
    missing = {CONDA_PACKAGE[m] for m in needed} - provided
    assert not missing, f"rule {rule}: {env_file.name} lacks {sorted(missing)} (imported by {script} or icetrack)"


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


PIP_NAME = {"matplotlib-base": "matplotlib", "netcdf4": "netcdf4", "pyyaml": "pyyaml"}


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_file_pins_conda_forge_and_versions(env_file):
    spec = yaml.safe_load(env_file.read_text())
    assert spec["channels"] == ["conda-forge", "nodefaults"], f"{env_file.name}: channels must be conda-forge, nodefaults"
    pip_pins = requirement_pins()
    for name, version in env_packages(env_file).items():
        assert re.fullmatch(r"\d+(\.\d+)*", version), f"{env_file.name}: {name} has no exact version pin ({version!r})"
        pip = pip_pins.get(PIP_NAME.get(name, name))
        # The conda env and the pip venv the tests run in must be the same software.
        assert pip is None or pip.startswith(version), f"{env_file.name}: {name}={version} but requirements.txt has {pip}"


def test_every_env_file_is_used():
    used = {(RULES / directive(b, "conda")).resolve() for b in RULE_BLOCKS.values() if directive(b, "conda")}
    unused = {p.resolve() for p in (REPO / "envs").glob("*.yaml")} - used
    assert not unused, f"env files no rule uses: {sorted(p.name for p in unused)}"


@pytest.mark.parametrize("rule", sorted(RULE_BLOCKS))
def test_rule_has_a_log_and_a_benchmark_under_its_own_name(rule):
    """Every job writes its log under logs/ and its time and memory under benchmarks/
    (what docs/scaling.md reads), both named after the rule and its wildcards."""
    block = RULE_BLOCKS[rule]
    log, benchmark = directive(block, "log"), directive(block, "benchmark")
    assert log and log.startswith("logs/") and log.endswith(".log"), f"rule {rule}: log: {log!r}"
    assert benchmark == log.replace("logs/", "benchmarks/", 1)[: -len(".log")] + ".tsv", f"rule {rule}: benchmark: {benchmark!r}"
