"""The knowledge base and intent services: what the engine's KnowledgeBase and
IntentClassifier Protocols are backed by in a running appliance."""

from appliance.knowledge.intents import IntentService, config_examples, read_examples_csv
from appliance.knowledge.service import (
    Embedder,
    FileOutcome,
    IngestProgress,
    IngestReport,
    KnowledgeService,
    document_id_for,
    embedding_model_id,
)

__all__ = [
    "Embedder",
    "FileOutcome",
    "IngestProgress",
    "IngestReport",
    "IntentService",
    "KnowledgeService",
    "config_examples",
    "document_id_for",
    "embedding_model_id",
    "read_examples_csv",
]
