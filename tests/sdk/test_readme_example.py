"""The README's SDK example runs verbatim against a local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from bench.mock_upstream import MockUpstream
from tests.conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Embedding the engine (SDK)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README lost its SDK example"
    return match.group(1)


async def test_readme_sdk_example_runs_verbatim(tmp_path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    (tmp_path / "policy.md").write_text(
        "# Orders\n\nWhere is my order? Tell us its order number and we look up where it is.\n\n"
        "# Refunds\n\nA refund takes five working days to reach the card it was paid with. "
        "Ask for a refund within 30 days of the purchase.\n\n# Opening hours\n\n"
        "The branch is open Monday to Friday, 9:00 to 17:00.\n")
    async with MockUpstream() as upstream:
        upstream.set(mode="tool_call", tool_name="order_status", times=1)
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script), cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "LLM_BASE_URL": upstream.url, "PYTHONPATH": str(ROOT)},
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        bodies = upstream.bodies
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stderr
    assert "Unclosed" not in stderr  # the agent released its HTTP session
    first_line = stdout.splitlines()[0]
    assert first_line.startswith("llm | "), stdout
    assert "tried" in stdout
    cited = [line for line in stdout.splitlines() if line.startswith("[llm]")]
    assert cited, stdout  # the streamed second turn ends with its Turn
    assert "policy.md" in cited[0], stdout  # it cites the knowledge base's file
    sent = " ".join(str(body) for body in bodies)
    assert "five working days" in sent  # the retrieved passage went to the model
    assert "4111 1111 1111 1111" not in sent and "[card]" in sent  # the middleware redacted it
    assert "left our warehouse yesterday" in sent  # the tool ran and its result went back to the model
