"""What the README's install relies on: the pinned versions it installs with."""

from __future__ import annotations


def test_constraints_pin_every_dependency_and_test_extra_to_one_version():
    """The install the README gives (`-c constraints.txt`) is the one CI tested: nothing left to the day's newest."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    pins = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version), f"not one exact version: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    assert names - set(pins) == set(), "dependencies without a pin in constraints.txt"
    from packaging.requirements import Requirement

    for spec in wanted:  # and each pin meets pyproject's own lower bound
        requirement = Requirement(spec.split("#")[0].strip())
        pinned = pins[requirement.name.lower().replace("_", "-")]
        assert requirement.specifier.contains(pinned, prereleases=True), f"{requirement} but pinned {pinned}"
    assert "authlib" in pins, "streamlit's auth extra is pinned too"
