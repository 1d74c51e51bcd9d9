"""config.example.toml documents every key and decodes; bad configs fail with one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from appliance.core.config import Config, decode_config
from appliance.core.errors import ConfigError
from tests.conftest import ROOT, run_cli

EXAMPLE = ROOT / "config.example.toml"


def _sections(struct: type[msgspec.Struct], prefix: str = "") -> dict[str, type[msgspec.Struct]]:
    found = {prefix: struct}
    for field in msgspec.structs.fields(struct):
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            found.update(_sections(field.type, f"{prefix}.{field.name}" if prefix else field.name))
    return found


def _list_item(annotation: object) -> type[msgspec.Struct] | None:
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list and args and issubclass(args[0], msgspec.Struct):
        return args[0]  # type: ignore[no-any-return]
    return None


def _is_struct(annotation: object) -> bool:
    """A nested section, or a list of tables (documented field by field)."""
    return _list_item(annotation) is not None or (
        isinstance(annotation, type) and issubclass(annotation, msgspec.Struct))


def test_example_decodes_to_the_defaults() -> None:
    config = decode_config(EXAMPLE.read_text(), str(EXAMPLE))
    defaults = decode_config("", str(EXAMPLE))
    assert msgspec.structs.replace(config, intents=defaults.intents) == defaults


def test_every_key_is_documented_with_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    section = ""
    documented: set[str] = set()
    for number, line in enumerate(lines):
        stripped = line.lstrip("# ").strip()
        if re.fullmatch(r"\[\[?[\w.]+\]\]?", stripped):
            section = stripped.strip("[]")
            continue
        key = re.match(r"(\w+) = ", stripped)
        if key and number > 0 and lines[number - 1].startswith("#"):
            documented.add(f"{section}.{key.group(1)}" if section else key.group(1))
    missing = []
    for path, struct in _sections(Config).items():
        for field in msgspec.structs.fields(struct):
            if field.name == "base_dir" or _is_struct(field.type):
                continue
            key = f"{path}.{field.name}" if path else field.name
            if key not in documented:
                missing.append(key)
    # List-of-table entries ([[intents.intents]], [[rules]], [[tools]]) are documented field by field.
    for path, struct in _sections(Config).items():
        for field in msgspec.structs.fields(struct):
            inner = _list_item(field.type)
            if inner is None:
                continue
            key = f"{path}.{field.name}" if path else field.name
            missing += [f"{key}.{f.name}" for f in msgspec.structs.fields(inner) if f"{key}.{f.name}" not in documented]
    assert not missing, f"undocumented config keys: {missing}"


@pytest.mark.parametrize(("text", "expected"), [
    ("[server]\nport = 'eighty'\n", "key 'server.port': Expected `int`, got `str`"),
    ("[server]\nprot = 80\n", "unknown key 'server.prot'"),
    ("[nonsense]\n", "unknown key 'nonsense'"),
    ("base_dir = '/'\n", "unknown key 'base_dir'"),
    ("[server\nport = 1", "not valid TOML"),
])
def test_bad_config_names_the_file_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        decode_config(text, "/etc/appliance/config.toml")
    message = str(caught.value)
    assert message.startswith("/etc/appliance/config.toml: ")
    assert expected in message


def test_cli_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[server]\nport = 'x'\n")
    for args in (["--config", str(bad), "serve"], ["--config", str(tmp_path / "missing.toml"), "serve"]):
        result = run_cli(*args, check=False)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert str(tmp_path) in result.stderr


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("token", "create", "--role", "admin", "--name", "x", check=False,
                     env={"APPLIANCE_CONFIG": str(tmp_path / "env.toml")})
    assert result.returncode == 2
    assert "env.toml" in result.stderr


def test_keys_an_older_version_wrote_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    text = "[knowledge]\nrrf_k = 60\ntop_k = 3\n[intents]\noos_threshold = 0.5\nmin_similarity = 0.4\n"
    with caplog.at_level("WARNING"):
        config = decode_config(text, "old.toml")
    assert config.knowledge.top_k == 3
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "knowledge.rrf_k" in warned and "intents.oos_threshold" in warned and "old.toml" in warned
    with pytest.raises(ConfigError, match=r"unknown key 'knowledge\.rrf_kk'"):
        decode_config("[knowledge]\nrrf_kk = 60\n", "typo.toml")
