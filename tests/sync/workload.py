"""Writes of the kinds a site makes, for replication tests: conversations with messages and
hand-offs, a knowledge document with vectors, settings, a user and a rating."""

from __future__ import annotations

import struct

from appliance.core import events as ev
from appliance.core.tokens import new_id
from appliance.core.types import Message
from appliance.store import Store


def conversation(store: Store, text: str, *, replies: int = 2, conversation_id: str | None = None) -> str:
    cid = conversation_id or new_id("conv")
    payloads: list[ev.EventPayload] = []
    if conversation_id is None:
        payloads.append(ev.ConversationStarted(conversation_id=cid, visitor_id=new_id("vis"), language="zh"))
    payloads.append(ev.MessageAdded(message=Message(id=new_id("msg"), conversation_id=cid, role="visitor", text=text)))
    for i in range(replies):
        payloads.append(ev.MessageAdded(message=Message(id=new_id("msg"), conversation_id=cid, role="bot",
                                                        text=f"{text} → answer {i}", source="knowledge")))
    store.append_sync(*payloads)
    return cid


def hand_to(store: Store, conversation_id: str, agent: str) -> None:
    store.append_sync(ev.OwnerChanged(conversation_id=conversation_id, owner=f"agent:{agent}", assignee=agent))


def document(store: Store, source: str, texts: list[str], dim: int = 8) -> str:
    document_id = new_id("doc")
    chunks = [ev.KnowledgeChunk(chunk_id=new_id("chk"), ordinal=i, text=t,
                                embedding=struct.pack(f"<{dim}f", *[(i + j + 1) / dim for j in range(dim)]))
              for i, t in enumerate(texts)]
    store.append_sync(ev.DocumentUpserted(document_id=document_id, source=source, title=source, model="test-embed",
                                          dim=dim, chunks=chunks))
    return document_id


def setting(store: Store, key: str, value: str) -> None:
    store.append_sync(ev.SettingChanged(key=key, value=value.encode()),
                      ev.AuditRecorded(actor="test", action="setting.change", target=key, after=value))


def mixed(store: Store, label: str, rounds: int) -> list[str]:
    """``rounds`` conversations (Chinese and English), a document, a setting and a rating."""
    ids = [conversation(store, f"{label} 我的信用卡丢了 {i}" if i % 2 else f"{label} where is my card {i}")
           for i in range(rounds)]
    document(store, f"{label}.md", [f"{label} 营业时间 9:00-17:00", f"{label} fees are 3.1 %"])
    setting(store, f"greeting.{label}", f"hello from {label}")
    if ids:
        store.append_sync(ev.RatingGiven(conversation_id=ids[0], score=5, comment="好"))
    return ids
