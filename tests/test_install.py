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


def test_the_readme_upgrade_backs_up_first_and_clears_build_before_every_install():
    """setuptools builds in the checkout's build/ folder and keeps files deleted upstream there: without `rm -rf build`
    a removed migration was installed again. The steps, and the way back, in the order the README gives them."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "### Upgrading KetaWatch\n" in readme, "the README has no upgrade steps"
    section = readme.split("### Upgrading KetaWatch\n", 1)[1].split("\n## ", 1)[0]
    upgrade, back = ([line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
                     for block in re.findall(r"```bash\n(.*?)```", section, re.S))

    def order(lines: list[str], *steps: str) -> list[int]:
        return [next(i for i, line in enumerate(lines) if step in line) for step in steps]

    steps = order(upgrade, "systemctl stop", "ketawatch backup", "git -C src pull", "rm -rf src/build",
                  "pip install . -c constraints.txt", "systemctl start")
    assert steps == sorted(steps), upgrade
    steps = order(back, "systemctl stop", "git -C src checkout", "rm -rf src/build", "pip install . -c constraints.txt",
                  "ketawatch restore --force", "systemctl start")
    assert steps == sorted(steps), back
    nginx = readme.split("**nginx's error log holds patient ids too.**", 1)[1].split("\n\n", 1)[0]
    assert "/var/log/nginx/error.log" in nginx and "same retention and access" in nginx
