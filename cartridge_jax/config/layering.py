"""Assembling the configuration from its layers, and its one-line error messages.

Layers, lowest to highest priority:

    defaults < preset < file < environment < flags

- defaults: the field defaults of `schema.Config`, the only place a hyperparameter's default
  lives;
- preset: a named set of overrides from `presets.PRESETS`, chosen by `common.preset` ("auto"
  picks `<game>-gpu` or `<game>-cpu` from the `backend` the caller names, "none" picks nothing);
- file: a TOML file, `--config PATH`, else `$CARTRIDGE_CONFIG`, else `./config.toml` if present;
- environment: `CARTRIDGE_<SECTION>_<KEY>`, e.g. `CARTRIDGE_TRAINING_LEARNING_RATE=3e-4`;
- flags: `{"section.key": text}` from the command line.

Environment and flag values are text, read as TOML values (`3e-4`, `true`, `[64, 64]`) and
otherwise taken as the raw string (`connect4`). Every problem is a `ConfigError` whose message is
one line naming the bad name or value, where it came from, and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ValidationError

from cartridge_jax.config.presets import PRESETS, unknown_preset_problem
from cartridge_jax.config.schema import CommonConfig, Config

ENV_PREFIX = "CARTRIDGE_"
CONFIG_FILE_ENV = "CARTRIDGE_CONFIG"
JAX_CACHE_DIR_ENV = "CARTRIDGE_JAX_CACHE_DIR"  # where compiled programs are kept (not a setting)
FAULT_ENV = "CARTRIDGE_FAULT"  # a fault point for the fault-injection tests (run/faults.py)
_NOT_SETTINGS = (CONFIG_FILE_ENV, JAX_CACHE_DIR_ENV, FAULT_ENV)
DEFAULT_CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration problem; the message is one line meant for the person who made it."""


# ---------------------------------------------------------------------------------------------
# Names: sections, keys and their defaults, straight from the models.


def _sections() -> dict[str, type[BaseModel]]:
    """Section name -> its model class, in declaration order."""
    return {name: field.annotation for name, field in Config.model_fields.items()}


def config_keys() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, description) for every setting, in declaration order."""
    return [
        (section, key, field.default, field.description or "")
        for section, model in _sections().items()
        for key, field in model.model_fields.items()
    ]


def _expects_text(section: str, key: str) -> bool:
    """Whether a field holds a string (plain or one of a Literal's string choices)."""
    annotation = _sections()[section].model_fields[key].annotation
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    return annotation is str


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggestion(name: str, candidates: Iterable[str], kind: str) -> str:
    """'; did you mean "x"?' for the closest candidate, else the list of valid `kind`."""
    candidates = list(candidates)
    closest = _closest(name, candidates)
    if closest:
        return f'; did you mean "{closest}"?'
    return f"; valid {kind}: {', '.join(candidates)}"


def _check_name(section: str, key: str, where: str) -> None:
    """Raise a ConfigError if `section.key` is not a setting; `where` says where it was written."""
    sections = _sections()
    if section not in sections:
        raise ConfigError(
            f'unknown section "{section}" ({where}){_suggestion(section, sections, "sections")}'
        )
    keys = sections[section].model_fields
    if key not in keys:
        raise ConfigError(
            f'unknown key "{key}" in [{section}] ({where}){_suggestion(key, keys, "keys")}'
        )


# ---------------------------------------------------------------------------------------------
# Layers: each is a list of settings; later settings override earlier ones.


class _Setting(NamedTuple):
    section: str
    key: str
    value: Any
    source: str  # "preset <name>", "file <path>", "environment <VAR>" or "flag --section.key"


def _parse_text(text: str, expects_text: bool) -> Any:
    """An environment or flag value: a TOML value if it reads as one, else the text itself."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    if set(parsed) != {"v"}:  # text like "1\nw = 2" smuggles in more than one value
        return text
    # A string field keeps the text as typed: run_dir = 2024 is a folder name, not a number.
    if expects_text and not isinstance(parsed["v"], str):
        return text
    return parsed["v"]


def _preset_settings(name: str) -> list[_Setting]:
    source = f"preset {name}"
    settings = []
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            _check_name(section, key, source)
            settings.append(_Setting(section, key, value, source))
    return settings


def _choose_file(config_file: str | None, env: Mapping[str, str]) -> pathlib.Path | None:
    """The config file to read, or None; a file named explicitly must exist."""
    if config_file:
        path, named_by = pathlib.Path(config_file), "--config"
    elif env.get(CONFIG_FILE_ENV):
        path, named_by = pathlib.Path(env[CONFIG_FILE_ENV]), CONFIG_FILE_ENV
    else:
        # ./config.toml is optional: a fresh checkout or another folder may have none.
        path = pathlib.Path(DEFAULT_CONFIG_FILE)
        return path if path.is_file() else None
    if not path.is_file():
        raise ConfigError(f"config file {path} (named by {named_by}) is missing or not a file")
    return path


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: invalid TOML: {_one_line(str(error))}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path}: cannot read: {_one_line(str(error))}") from None


def _outside_section_message(name: str, source: str) -> str:
    """For a top-level `name = value` in a file: TOML needs a [section] header above it."""
    if name in _sections():
        return f'"{name}" ({source}) must be a [{name}] table, not a value'
    homes = [section for section, key, *_ in config_keys() if key == name]
    hint = f"; did you mean it under [{homes[0]}]?" if homes else ""
    return f'"{name}" ({source}) is a value outside any [section]{hint}'


def _file_settings(path: pathlib.Path) -> list[_Setting]:
    source = f"file {path}"
    settings = []
    for section, values in _read_toml(path).items():
        if not isinstance(values, dict):
            raise ConfigError(_outside_section_message(section, source))
        for key, value in values.items():
            _check_name(section, key, source)
            settings.append(_Setting(section, key, value, source))
    return settings


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _unknown_env_message(name: str, known: list[str]) -> str:
    # Compared without the shared prefix, which would make every name look close.
    closest = _closest(name.removeprefix(ENV_PREFIX), [n.removeprefix(ENV_PREFIX) for n in known])
    hint = (
        f"did you mean {ENV_PREFIX}{closest}?"
        if closest
        else f"names are {ENV_PREFIX}<SECTION>_<KEY>, e.g. {_env_name('training', 'batch_size')}"
    )
    return f"unknown environment variable {name}; {hint}"


def _env_settings(env: Mapping[str, str]) -> list[_Setting]:
    by_name = {_env_name(section, key): (section, key) for section, key, *_ in config_keys()}
    settings = []
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        if name not in by_name:
            raise ConfigError(_unknown_env_message(name, [*by_name, *_NOT_SETTINGS]))
        section, key = by_name[name]
        value = _parse_text(text, _expects_text(section, key))
        settings.append(_Setting(section, key, value, f"environment {name}"))
    return settings


def _flag_settings(flags: Mapping[str, Any]) -> list[_Setting]:
    settings = []
    for name, text in flags.items():
        source = f"flag --{name}"
        section, _, key = name.partition(".")
        _check_name(section, key, source)
        # Callers may pass typed values (tests, other Python code); only text needs parsing.
        value = _parse_text(text, _expects_text(section, key)) if isinstance(text, str) else text
        settings.append(_Setting(section, key, value, source))
    return settings


def _resolve_preset(upper: list[_Setting], backend: str) -> str | None:
    """The preset named by the layers above it ("auto" resolved for `backend`), or None."""
    latest = {(s.section, s.key): s for s in upper}
    choice = latest.get(("common", "preset"))
    preset = choice.value if choice else CommonConfig.model_fields["preset"].default
    if preset == "auto":
        game_setting = latest.get(("common", "game"))
        game = game_setting.value if game_setting else CommonConfig.model_fields["game"].default
        candidate = f"{game}-{'cpu' if backend == 'cpu' else 'gpu'}"
        return candidate if candidate in PRESETS else None
    if preset == "none" or not isinstance(preset, str):
        return None  # a non-string preset is reported by validation, with its source
    if preset not in PRESETS:
        problem = unknown_preset_problem()
        raise ConfigError(_bad_value("common.preset", preset, choice.source, problem))
    return preset


# ---------------------------------------------------------------------------------------------
# Validation messages.


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _toml_string(text: str) -> str:
    """A TOML basic string; control characters escaped as the spec requires."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: Any) -> str:
    """A value as TOML text (also how bad values are shown in messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr(1e-05) == "1e-05", repr(inf) == "inf": both valid TOML
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return _one_line(repr(value))


def _bad_value(name: str, value: Any, source: str, problem: str) -> str:
    return f"{name} = {_toml_value(value)} (from {source}): {problem}"


def _problem(error: Mapping[str, Any], default: Any) -> str:
    """Pydantic's message reworded as what the value must be (`default` serves as an example)."""
    kind, message, context = error["type"], error["msg"], error.get("ctx") or {}
    if kind == "too_short":
        return f"must have at least {context['min_length']} item(s)"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, e.g. {_toml_value(default)}"
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be "):
        return "must be " + message.removeprefix("Input should be ")
    return message[:1].lower() + message[1:]


def _validation_message(
    error: ValidationError, values: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]
) -> str:
    """One line for the first problem, naming key, value, source and what is allowed."""
    first, *others = error.errors()
    suffix = f" (and {len(others)} more problem(s))" if others else ""
    if len(first["loc"]) == 1:  # a section's own check across its keys; the message names them
        return f"[{first['loc'][0]}] {_problem(first, None)}{suffix}"
    section, key, *item = first["loc"]
    name = f"{section}.{key}"
    problem = _problem(first, _sections()[section].model_fields[key].default)
    if item:  # an element of a list field: show the whole list, point at the element
        problem = f"item {item[0]} {problem}"
    return _bad_value(name, values[section][key], sources[name], problem) + suffix


def _validate(settings: list[_Setting]) -> tuple[Config, dict[str, str]]:
    values: dict[str, dict[str, Any]] = {section: {} for section in _sections()}
    sources = {f"{section}.{key}": "default" for section, key, *_ in config_keys()}
    for setting in settings:
        values[setting.section][setting.key] = setting.value
        sources[f"{setting.section}.{setting.key}"] = setting.source
    try:
        return Config.model_validate(values), sources
    except ValidationError as error:
        raise ConfigError(_validation_message(error, values, sources)) from None


# ---------------------------------------------------------------------------------------------
# Public entry points.


def load_config(
    *,
    config_file: str | None = None,
    flags: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    backend: str = "cpu",
) -> tuple[Config, dict[str, str]]:
    """The validated config and, for every "section.key", where its value came from.

    flags: {"section.key": text}, highest priority. env: defaults to os.environ. backend: the
    platform `common.preset = "auto"` chooses for ("cpu" picks `<game>-cpu`, anything else
    `<game>-gpu`); callers that run JAX pass `jax.default_backend()`, so that reading a
    configuration never starts JAX itself.
    Sources read "default", "preset <name>", "file <path>", "environment CARTRIDGE_X_Y" or
    "flag --section.key". Raises ConfigError (one line) on any problem.
    """
    env = os.environ if env is None else env
    path = _choose_file(config_file, env)
    upper = [
        *(_file_settings(path) if path else []),
        *_env_settings(env),
        *_flag_settings(flags or {}),
    ]
    # The preset sits under file, env and flags, but which preset is decided by them.
    preset = _resolve_preset(upper, backend)
    return _validate([*(_preset_settings(preset) if preset else []), *upper])


def format_config(config: Config, sources: Mapping[str, str]) -> str:
    """The effective config as TOML that loads back to it, each value's source in a comment."""
    lines = ["# Effective configuration; the comment after each value says where it came from."]
    for section in _sections():
        lines += ["", f"[{section}]"]
        for key, value in getattr(config, section).model_dump().items():
            source = _one_line(sources.get(f"{section}.{key}", "default"))
            lines.append(f"{key} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"
