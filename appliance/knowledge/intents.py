"""The intent classifier as a service: trained from the config's intents (and a CSV of examples)
layered with the examples admins add or remove in the console (:mod:`appliance.core.intent_examples`),
at start-up and whenever the examples change; classification on a worker thread.

A change is picked up without a restart: :meth:`IntentService.refresh` (called by the admin API
after its write, and by :meth:`IntentService.watch` once a second for changes replicated from
other nodes) retrains in the background, embedding only examples the store's cache lacks on the
embedder's worker thread and fitting on another thread, and swaps the model in when it is
ready; turns classified meanwhile use the previous one.

Implements the engine's ``IntentClassifier`` Protocol. ``classify`` returns the closest intent
even when it is out of scope (``in_scope`` False), so traces can show what was nearly matched;
only an in-scope match should route.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from appliance.core.chunking import text_hash
from appliance.core.config import IntentConfig, IntentsConfig
from appliance.core.errors import ConfigError
from appliance.core.intent_examples import IntentExample, StoredExample, layered
from appliance.core.intents import IntentModel, Prediction
from appliance.core.ports import IntentMatch
from appliance.knowledge.service import Embedder, vector_bytes
from appliance.store import Store
from appliance.store import intents as stored
from appliance.store import knowledge as kb

Example = tuple[str, str]  # (text, label)
log = logging.getLogger("appliance.intents")


class Training(msgspec.Struct, frozen=True, kw_only=True):
    """The model in use: what it learned from, and how long its training took."""

    examples: int = 0
    intents: int = 0
    seconds: float = 0.0
    at_ms: int = 0


def read_examples_csv(path: Path) -> list[Example]:
    """``text,label`` rows (a header row naming those two columns is required)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read intent examples ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "text" not in header or "label" not in header:
        raise ConfigError(f"{path}: intent examples need a header row with 'text' and 'label' columns")
    text_at, label_at = header.index("text"), header.index("label")
    examples = []
    for row in rows[1:]:
        if len(row) > max(text_at, label_at) and row[text_at].strip() and row[label_at].strip():
            examples.append((row[text_at].strip(), row[label_at].strip()))
    return examples


def config_examples(config: IntentsConfig, examples_csv: Path | None = None) -> list[Example]:
    examples = [(text, intent.name) for intent in config.intents for text in intent.examples if text.strip()]
    if examples_csv is not None:
        examples.extend(read_examples_csv(examples_csv))
    return examples


def _fingerprint(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for text, label in examples:
        digest.update(f"{label}\x1f{text}\x1e".encode())
    return digest.hexdigest()


class IntentService:
    def __init__(
        self, embedder: Embedder, config: IntentsConfig, *, examples_csv: Path | None = None,
        store: Store | None = None, model_id: str = "default",
    ) -> None:
        self.embedder = embedder
        self.config = config
        self.examples_csv = examples_csv
        self.store = store
        self.model_id = model_id
        self.training = Training()
        self._model: IntentModel | None = None
        self._configured: list[Example] = []
        self._examples: list[IntentExample] = []
        self._fingerprint = ""
        self._version = -1
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None

    @property
    def model(self) -> IntentModel | None:
        return self._model

    @property
    def version(self) -> str:
        """Of the examples the model in use learned (empty: none)."""
        return self._fingerprint[:16]

    @property
    def configured(self) -> list[Example]:
        """The config's and the CSV's ``(text, intent)`` pairs, before the console's changes."""
        return self._configured

    @property
    def examples(self) -> list[IntentExample]:
        """The examples the model in use was trained on."""
        return self._examples

    def intent(self, name: str | None) -> IntentConfig | None:
        """The configured intent (its action, answer, tool) for a classified name."""
        return next((intent for intent in self.config.intents if intent.name == name), None)

    async def start(self) -> None:
        await self.reload(self.config, self.examples_csv)

    async def reload(self, config: IntentsConfig, examples_csv: Path | None = None) -> bool:
        """Adopt a new intents config; retrains (True) only when the examples changed."""
        configured = await asyncio.to_thread(config_examples, config, examples_csv)
        async with self._lock:
            self.config, self.examples_csv, self._configured = config, examples_csv, configured
            return await self._retrain()  # a new config may change everything: trained afresh

    async def refresh(self) -> bool:
        """Adopt the console's changes now in the store; retrains (True) only when they changed
        the examples in force."""
        async with self._lock:
            return await self._retrain(warm=True)

    async def _retrain(self, *, warm: bool = False) -> bool:
        changes: list[StoredExample] = []
        if self.store is not None:
            self._version, changes = await self.store.read(lambda c: (stored.version(c), stored.stored_examples(c)))
        examples = layered(self._configured, changes)
        pairs = [(example.text, example.intent) for example in examples]
        fingerprint = _fingerprint(pairs)
        if fingerprint == self._fingerprint:
            self._examples = examples
            return False
        started = time.perf_counter()
        await self.train(pairs, warm=warm)
        self._examples, self._fingerprint = examples, fingerprint
        self.training = Training(examples=len(pairs), intents=len({label for _, label in pairs}),
                                 seconds=round(time.perf_counter() - started, 3), at_ms=time.time_ns() // 1_000_000)
        return True

    def watch(self, interval_s: float = 1.0) -> None:
        """Poll the store for console changes (replicated ones too) and adopt them."""
        self._watch = asyncio.create_task(self._watching(interval_s))

    async def _watching(self, interval_s: float) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await self.store.read(stored.version) != self._version:
                    await self.refresh()
            except Exception:
                log.exception("intent examples could not be reloaded")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def train(self, examples: Sequence[Example], *, warm: bool = False) -> None:
        """Replace the model by one trained on ``examples`` (none: every text is out of scope);
        ``warm``: they differ from the current model's by a few, so its regressions are the start."""
        if not examples:
            self._model = None
            return
        texts = [text for text, _ in examples]
        vectors = await self._embed(texts)
        labels = [label for _, label in examples]
        previous = self._model if warm else None
        self._model = await asyncio.to_thread(IntentModel.train, texts, labels, vectors, previous)

    async def _embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of example texts, through the store's embedding cache when there is one."""
        if self.store is None:
            return await self.embedder.embed(texts)
        store, model = self.store, f"{self.model_id}#query"  # not the passage vectors of the same text
        hashes = [text_hash(text) for text in texts]
        cached = await store.read(lambda conn: kb.cached_embeddings(conn, model, hashes))
        missing = [i for i, digest in enumerate(hashes) if digest not in cached]
        fresh: dict[bytes, bytes] = {}
        for start in range(0, len(missing), 64):
            group = missing[start:start + 64]
            vectors = await self.embedder.embed([texts[i] for i in group])
            fresh.update((hashes[i], vector_bytes(vector)) for i, vector in zip(group, vectors, strict=True))
        if fresh:
            await store.write(lambda txn: kb.cache_embeddings(txn.conn, model, fresh.items()))
        rows = [np.frombuffer(cached.get(digest) or fresh[digest], dtype="<f4") for digest in hashes]
        return np.vstack(rows).astype(np.float32)

    def predict_sync(self, text: str) -> Prediction | None:
        """Embed and classify on the calling thread (blocking; about 5 ms)."""
        model = self._model
        if model is None or not text.strip():
            return None
        vector = self.embedder.embed_sync([text])[0]
        return model.predict(text, vector)

    async def predict(self, text: str) -> Prediction | None:
        return await asyncio.to_thread(self.predict_sync, text)

    async def classify(self, text: str) -> IntentMatch:
        prediction = await self.predict(text)
        if prediction is None:
            return IntentMatch(name=None, confidence=0.0, in_scope=False)
        return IntentMatch(name=prediction.label, confidence=round(prediction.confidence, 4),
                           in_scope=prediction.in_scope)

