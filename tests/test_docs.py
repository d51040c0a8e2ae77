"""docs/: the configuration reference is the generator's output and says what validation
enforces; the prose pages name only commands, flags, variables, files and tests that exist."""

import argparse
import importlib
import math
import pathlib
import re
import tomllib

import pytest

from cartridge_jax import cli
from cartridge_jax import config as config_lib
from cartridge_jax.config import layering, reference

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
REFERENCE = reference.configuration_markdown()
FILE_TYPES = {"py", "md", "json", "jsonl", "obf", "onnx", "msgpack", "toml", "html", "js", "mjs",
              "wasm", "ipynb", "png"}
# A path inside the repository (not inside another path such as ~/.cache/cartridge_jax/jax).
REPO_PATH = r"(?<![\w./~-])((?:cartridge_jax|scripts|tests|site|notebooks)/[\w./-]*\w)"
NOT_SETTINGS = {"CARTRIDGE_CONFIG", "CARTRIDGE_JAX_CACHE_DIR", "CARTRIDGE_NOTEBOOK_TINY"}


def _load(flags=None, env=None):
    return config_lib.load_config(flags=flags or {}, env=env or {})


def _key_rows():
    """(section, key, allowed) for every key row of the reference's section tables."""
    section = None
    for line in REFERENCE.splitlines():
        if heading := re.match(r"## `\[(\w+)\]`", line):
            section = heading.group(1)
        elif section and (row := re.match(r"\| `(\w+)` \| `.*?` \| (.*?) \| ", line)):
            yield section, row.group(1), row.group(2)
        elif line.startswith("## Presets"):
            return


def _toml(text: str):
    return tomllib.loads(f"v = {text}")["v"]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def test_configuration_reference_is_up_to_date():
    assert (DOCS / "configuration.md").read_text() == REFERENCE, (
        f"docs/configuration.md is stale: regenerate it with `{reference.REGENERATE}`")


def test_every_key_is_documented_with_its_variable_and_flag():
    documented = [(section, key) for section, key, _ in _key_rows()]
    assert documented == [(section, key) for section, key, *_ in config_lib.config_keys()]
    for section, key, default, _ in config_lib.config_keys():
        env_name = f"CARTRIDGE_{section}_{key}".upper()
        assert f"`{env_name}`<br>`--{section}.{key}`" in REFERENCE
        text = layering._toml_value(default)
        _, sources = _load(env={env_name: text})
        assert sources[f"{section}.{key}"] == f"environment {env_name}"
        _, sources = _load(flags={f"{section}.{key}": text})
        assert sources[f"{section}.{key}"] == f"flag --{section}.{key}"


def _accepted(section: str, key: str, value) -> bool:
    try:
        _load(flags={f"{section}.{key}": value})
    except config_lib.ConfigError:
        return False
    return True


def _bound_cases(kind: str, sign: str, bound: float):
    """(value, should be accepted) on both sides of one documented bound."""
    if kind == "integer":
        below, above = int(bound) - 1, int(bound) + 1
    else:
        below, above = math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)
    at = int(bound) if kind == "integer" else float(bound)
    return {">=": [(at, True), (below, False)], ">": [(at, False), (above, True)],
            "<=": [(at, True), (above, False)], "<": [(at, False), (below, True)]}[sign]


@pytest.mark.parametrize("section, key, allowed", list(_key_rows()),
                         ids=[f"{section}.{key}" for section, key, _ in _key_rows()])
def test_documented_values_are_what_validation_accepts(section, key, allowed):
    if allowed.startswith("list of "):
        item_rule = allowed.removeprefix("list of ").split(", at least")[0]
        if minimum := re.search(r"at least (\d+) item", allowed):
            assert _accepted(section, key, []) == (int(minimum.group(1)) == 0)
        wrap = lambda value: [value]  # noqa: E731
    else:
        item_rule, wrap = allowed, lambda value: value  # noqa: E731
    if item_rule.startswith("one of "):
        choices = [_toml(text) for text in re.findall(r"`([^`]+)`", item_rule)]
        assert choices
        for choice in choices:
            assert _accepted(section, key, wrap(choice)), choice
        assert not _accepted(section, key, wrap("no-such-value"))
    elif match := re.match(r"(integer|number)((?: (?:>=|>|<=|<) \S+(?: and)?)*)$", item_rule):
        kind, bounds = match.group(1), re.findall(r"(>=|>|<=|<) ([^\s]+)", match.group(2))
        for sign, bound in bounds:
            for value, ok in _bound_cases(kind, sign, float(bound)):
                assert _accepted(section, key, wrap(value)) == ok, (sign, bound, value)
        wrong_type = "text" if kind == "integer" else True
        assert not _accepted(section, key, wrap(wrong_type))
    elif item_rule == "`true` or `false`":
        assert _accepted(section, key, wrap(True)) and _accepted(section, key, wrap(False))
        assert not _accepted(section, key, wrap(1))
    else:
        assert item_rule == "text", f"no check for {allowed!r}: extend this test"
        assert not _accepted(section, key, wrap(3))


def _presets_table():
    """{preset: {"section.key": cell text or None}} from the reference's presets table."""
    lines = REFERENCE[REFERENCE.index("## Presets"):].splitlines()
    header = next(line for line in lines if line.startswith("| key |"))
    names = re.findall(r"`([\w-]+)`", header)
    table = {name: {} for name in names}
    for line in lines:
        if row := re.match(r"\| `(\w+\.\w+)` \| `(.*?)` \| (.*) \|$", line):
            for name, cell in zip(names, row.group(3).split(" | ")):
                table[name][row.group(1)] = cell.strip("` ") or None
    return table


def test_presets_table_is_what_each_preset_loads():
    table = _presets_table()
    assert set(table) == set(config_lib.PRESETS)
    for preset, cells in table.items():
        config, sources = _load(flags={"common.preset": preset})
        for name, cell in cells.items():
            section, key = name.split(".")
            value = _plain(getattr(getattr(config, section), key))
            if cell is None:
                assert sources[name] == "default", (preset, name)
            else:
                assert value == _toml(cell) and sources[name] == f"preset {preset}", (preset, name)


# ---------------------------------------------------------------------------------------------
# The prose pages


PAGES = sorted(DOCS.glob("*.md"))


def _commands() -> set[str]:
    (subcommands,) = [action for action in cli.build_parser()._actions
                      if isinstance(action, argparse._SubParsersAction)]
    return set(subcommands.choices)


def _modules(name: str) -> list:
    """The package's modules and subpackages whose last name is `name` (a section such as
    `export` shares its name with `model/export.py`)."""
    package = REPO / "cartridge_jax"
    found = []
    for path in sorted([*package.rglob(f"{name}.py"), *package.rglob(f"{name}/__init__.py")]):
        parts = path.relative_to(REPO).with_suffix("").parts
        found.append(importlib.import_module(".".join(
            parts[:-1] if parts[-1] == "__init__" else parts)))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_pages_name_only_things_that_exist(page):
    text = page.read_text()
    keys = {f"{section}.{key}" for section, key, *_ in config_lib.config_keys()}
    sections = {section for section, *_ in config_lib.config_keys()}
    for command in re.findall(r"python -m cartridge_jax (\w+)", text):
        assert command in _commands(), command
    for section, key in re.findall(r"--(\w+)\.(\w+)", text):
        assert f"{section}.{key}" in keys, f"--{section}.{key}"
    for section, key in re.findall(r"`(\w+)\.(\w+)`", text):  # a key, a function or a file
        if section in sections and key not in FILE_TYPES and not any(
                hasattr(module, key) for module in _modules(section)):
            assert f"{section}.{key}" in keys, f"{section}.{key}"
    for name in re.findall(r"CARTRIDGE_[A-Z][A-Z_]*[A-Z]", text):
        env_names = {layering._env_name(*key.split(".")) for key in keys}
        assert name in env_names | NOT_SETTINGS, name
    for path in re.findall(REPO_PATH, text):
        assert (REPO / path).exists(), path
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (page.parent / target).exists(), target


def test_new_game_page_lists_the_conformance_tests():
    page = (DOCS / "new-game.md").read_text()
    suite = (REPO / "tests" / "test_game_conformance.py").read_text()
    defined = set(re.findall(r"^def (test_\w+)", suite, re.MULTILINE))
    listed = set(re.findall(r"\| `(test_\w+)` \|", page))
    assert listed == defined


def test_architecture_page_lists_every_module():
    page = (DOCS / "architecture.md").read_text()
    table = page[page.index("## Modules"):page.index("## Shapes")]
    first_cells = re.findall(r"^\| (.*?) \|", table, re.MULTILINE)
    listed = {name for cell in first_cells for name in re.findall(r"`(\w+\.py|\w+/)`", cell)}
    package = REPO / "cartridge_jax"
    present = {f"{path.name}" for path in package.glob("*.py") if path.name != "__init__.py"}
    present |= {f"{path.parent.name}/" for path in package.glob("*/__init__.py")}
    assert listed == present, "update the module table of docs/architecture.md"
