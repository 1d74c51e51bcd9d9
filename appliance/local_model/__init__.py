"""The built-in llama.cpp models: a chat model for the fallback path and a sentence embedder.

I/O layer: blocking llama.cpp calls run on one worker thread per model, never on the event loop.
"""

from appliance.local_model.chat import LocalChat
from appliance.local_model.embedder import LocalEmbedder
from appliance.local_model.paths import (
    CHAT_FILE,
    EMBED_FILE,
    SETUP_COMMAND,
    SMALL_CHAT_FILE,
    ModelCorrupt,
    ModelMissing,
    builtin_chat_path,
    builtin_model_dir,
    verify_model,
)

__all__ = [
    "CHAT_FILE",
    "EMBED_FILE",
    "SETUP_COMMAND",
    "SMALL_CHAT_FILE",
    "LocalChat",
    "LocalEmbedder",
    "ModelCorrupt",
    "ModelMissing",
    "builtin_chat_path",
    "builtin_model_dir",
    "verify_model",
]
