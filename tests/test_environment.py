"""The toolchain files agree: environment.yml names the lock's direct pins, torch is pinned."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def direct_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.startswith("# everything they pull in"):
            break
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def all_pins() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.lower(): version for name, version in pairs}


def test_lock_pins_every_package_exactly_and_torch_to_2_13_0():
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    for line in lines:
        if line.strip() and not line.startswith("#"):
            assert line.count("==") == 1, f"not an exact pin: {line!r}"
    pins = all_pins()
    assert pins["torch"] == "2.13.0"
    assert pins["nbval"] == "0.11.0"
    for name in ["numpy", "matplotlib", "jupyterlab", "jupytext", "scikit-learn",
                 "scikit-image", "tqdm", "pooch", "pytest", "pytest-xdist", "hypothesis", "ruff"]:
        assert name in direct_pins(), f"{name} is not among the lock's direct pins"


def test_environment_yml_names_the_same_direct_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    conda_pins = dict(line.lower().split("==") for line in pip_section)
    assert conda_pins == direct_pins()


def test_pyproject_ranges_admit_the_locked_versions_and_do_not_cap_torch():
    import tomllib

    from packaging.requirements import Requirement

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = all_pins()
    requirements = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    for text in requirements:
        req = Requirement(text)
        assert req.specifier.contains(pins[req.name.lower()]), f"{text} excludes the locked version"
    torch_req = next(Requirement(r) for r in meta["dependencies"] if r.startswith("torch"))
    for newer in ("2.15.0", "3.0.0"):
        assert torch_req.specifier.contains(newer), "installing the helpers would downgrade torch"
    uncapped = [r for r in meta["dependencies"] if "<" in r]
    assert not uncapped, f"upper caps need a known incompatibility (and a comment): {uncapped}"


def test_licence_and_citation_are_in_place():
    licence = (ROOT / "LICENSE").read_text()
    assert "MIT License" in licence and "CC BY 4.0" in licence
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["title"].startswith("Training")
    assert set(citation["license"]) == {"MIT", "CC-BY-4.0"}
