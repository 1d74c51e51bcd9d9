"""How long an intent example added or removed in the console takes to reach the classifier.

    .venv/bin/python -m bench.intent_apply [--csv ../shared/data/intents/banking77/train.csv] [--store PATH]

Trains the running service's classifier (the built-in embedding model, a real store for the
embedding cache) on a CSV of examples (Banking77's 10,003 by default), then adds an example to
an intent, removes it, adds one to a new intent and removes that, the way the admin API does: the write, then
``IntentService.refresh``, which embeds only the new text and retrains starting from the model in
use; then, for comparison, a training afresh on the same examples (what a config reload does). While each change is
applied a task classifies a sentence every 50 ms on the same event loop, to show the loop stays
free (the slowest classification is reported). Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from appliance.core.config import IntentsConfig
from appliance.core.intents import IntentModel
from appliance.knowledge import IntentService
from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir
from appliance.local_model.memo import RecentEmbeddings
from appliance.store import Store
from appliance.store import intents as stored

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "intents" / "banking77" / "train.csv"


async def measure(csv: Path, path: Path | None) -> dict[str, object]:
    embedder = LocalEmbedder.load(builtin_model_dir() / EMBED_FILE, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(path or Path(tmp) / "bench.db", "bench")
        service = IntentService(RecentEmbeddings(embedder), IntentsConfig(), examples_csv=csv, store=store,
                                model_id="bench")
        started = time.perf_counter()
        await service.start()
        first = time.perf_counter() - started
        warm = IntentService(RecentEmbeddings(embedder), IntentsConfig(), examples_csv=csv, store=store,
                             model_id="bench")
        started = time.perf_counter()
        await warm.start()  # a restart: every embedding comes from the store's cache
        restart = time.perf_counter() - started

        async def change(work: object) -> dict[str, float]:
            slowest = 0.0
            done = asyncio.Event()

            async def classify() -> None:
                nonlocal slowest
                while not done.is_set():
                    t = time.perf_counter()
                    await service.classify("my card has not arrived yet")
                    slowest = max(slowest, time.perf_counter() - t)
                    await asyncio.sleep(0.05)

            probe = asyncio.create_task(classify())
            t = time.perf_counter()
            await store.write(work)  # type: ignore[arg-type]
            await service.refresh()
            applied = time.perf_counter() - t
            done.set()
            await probe
            return {"applied_s": round(applied, 2), "fit_s": service.training.seconds,
                    "slowest_classify_ms": round(slowest * 1000, 1)}

        added = await change(stored.add_example(service.configured, "card_arrival", "the courier never brought "
                                                "my new card", actor="bench", ip="local"))
        example = next(e for e in service.examples if e.origin == "console")
        removed = await change(stored.remove_example(service.configured, "card_arrival", example.id, actor="bench",
                                                     ip="local"))
        new_intent = await change(stored.add_example(service.configured, "branch_hours", "when does the branch "
                                                     "open on saturday", actor="bench", ip="local"))
        prediction = await service.predict("what time does the branch open on saturdays")
        made = next(e for e in service.examples if e.intent == "branch_hours")
        intent_removed = await change(stored.remove_example(service.configured, "branch_hours", made.id,
                                                            actor="bench", ip="local"))
        pairs = [(e.text, e.intent) for e in service.examples]
        vectors = await service._embed([text for text, _ in pairs])
        t = time.perf_counter()  # the same examples trained afresh, as a config reload does
        await asyncio.to_thread(IntentModel.train, [text for text, _ in pairs], [label for _, label in pairs], vectors)
        cold = time.perf_counter() - t
        result = {"examples": service.training.examples, "intents": service.training.intents,
                  "first_start_s": round(first, 1), "restart_s": round(restart, 1), "add": added,
                  "remove": removed, "new_intent": new_intent, "new_intent_removed": intent_removed,
                  "new_intent_paraphrase": prediction.label if prediction else None, "cold_fit_s": round(cold, 2)}
        store.close()
    embedder.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--store", type=Path, help="a store to keep (its embedding cache) between runs")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.csv, args.store))))


if __name__ == "__main__":
    main()
