"""The peer: LiteLLM's proxy, pinned, in its own virtual environment, against the same mock.

``bench/.peer-venv`` is created and ``litellm[proxy]`` installed at the pinned release only when
missing (1.82.7 and 1.82.8 were compromised and must never be used). uvicorn's C HTTP parser
(httptools) goes in too, so uvicorn picks its fast path, as ``uvicorn[standard]`` would. The proxy
runs as a user would run it at its best here: one uvicorn worker per core, uvloop, access log
and request logging off, the model-cost map read locally (this machine has no internet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.processes import BenchError, Process, free_port

LITELLM = "litellm[proxy]==1.100.5"
EXTRAS = ["httptools==0.7.1"]
COMPROMISED = ("1.82.7", "1.82.8")
VENV = Path(__file__).resolve().parent / ".peer-venv"
MODEL = "m"
READY_LINE = "Proxy initialized with Config"  # printed once by each worker


def installed_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; m.version('httptools'); print(m.version('litellm'))"
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_installed(log: Path) -> str:
    """Install the pinned proxy into ``bench/.peer-venv`` unless it is there; returns its version."""
    wanted = LITELLM.split("==")[1]
    assert wanted not in COMPROMISED
    if installed_version() == wanted:
        return wanted
    steps = [[str(VENV / "bin" / "pip"), "install", "-q", LITELLM, *EXTRAS]]
    if not (VENV / "bin" / "pip").exists():
        steps.insert(0, [sys.executable, "-m", "venv", str(VENV)])
    with log.open("ab") as out:
        for step in steps:
            result = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=900)
            if result.returncode != 0:
                raise BenchError(f"`{' '.join(step)}` failed with exit {result.returncode}:\n{_tail(log)}")
    version = installed_version()
    if version != wanted:
        raise BenchError(f"after installing, litellm reports version {version!r}, not {wanted}:\n{_tail(log)}")
    return version


def start(workdir: Path, mock_url: str, workers: int) -> tuple[Process, str]:
    """Start the proxy; returns it and its base URL."""
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {mock_url}\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  set_verbose: false\n"
        "  turn_off_message_logging: true\n"
        "  telemetry: false\n"
        "general_settings:\n"
        "  disable_spend_logs: true\n"
    )
    log_config = workdir / "litellm-logging.json"
    log_config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "loggers": {"uvicorn": {"level": "WARNING"}, "uvicorn.error": {"level": "WARNING"},
                    "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False}},
    }))
    port = free_port()
    env = {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
           "PYTHONUNBUFFERED": "1"}
    argv = [str(VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", str(workers), "--log_config", str(log_config), "--telemetry", "False"]
    proxy = Process("LiteLLM proxy", argv, workdir / "litellm.log", env={**env, "PATH": os.environ["PATH"]})
    url = f"http://127.0.0.1:{port}"
    proxy.wait_http(f"{url}/health/liveliness", timeout=180)
    _wait_workers(proxy, workers, timeout=180)
    return proxy, url


def _wait_workers(proxy: Process, workers: int, timeout: float) -> None:
    """The first worker answers health checks long before the others have loaded; wait for all."""
    deadline = time.monotonic() + timeout
    while proxy.log.read_text(errors="replace").count(READY_LINE) < workers:
        if time.monotonic() > deadline:
            raise BenchError(f"{proxy.name}: fewer than {workers} workers ready after {timeout:.0f}s:\n{proxy.tail()}")
        if proxy.proc.poll() is not None:
            raise BenchError(f"{proxy.name} exited with {proxy.proc.returncode}:\n{proxy.tail()}")
        time.sleep(0.5)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
