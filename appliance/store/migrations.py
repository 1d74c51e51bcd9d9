"""Versioned schema migrations, tracked in ``PRAGMA user_version``.

Each migration is appended, never edited: a node upgraded in place runs only the new ones.
"""

from __future__ import annotations

import pysqlite3.dbapi2 as sqlite3

from appliance.store.db import Connection

MIGRATIONS: list[str] = [
    # 1: event log and the core materialized views.
    """
    CREATE TABLE events (
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hlc INTEGER NOT NULL,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (origin, seq)
    ) WITHOUT ROWID;
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        visitor_id TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'web',
        owner TEXT NOT NULL DEFAULT 'bot',
        status TEXT NOT NULL DEFAULT 'open',
        started_hlc INTEGER NOT NULL,
        updated_hlc INTEGER NOT NULL
    );
    CREATE INDEX conversations_owner ON conversations (owner, updated_hlc);
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        citations BLOB,
        trace_id TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL DEFAULT '',
        attachments BLOB
    );
    CREATE INDEX messages_conversation ON messages (conversation_id, hlc);
    CREATE TABLE traces (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        message_id TEXT NOT NULL DEFAULT '',
        hlc INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX traces_conversation ON traces (conversation_id, hlc);
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL DEFAULT '',
        disabled INTEGER NOT NULL DEFAULT 0,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL DEFAULT '',
        revoked INTEGER NOT NULL DEFAULT 0,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE TABLE audit (
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hlc INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (origin, seq)
    );
    CREATE TABLE feedback (
        message_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        rating TEXT NOT NULL,
        hlc INTEGER NOT NULL
    );
    """,
    # 2: knowledge base (see store/knowledge.py; kb_vectors is created with the model's dimension).
    """
    CREATE TABLE kb_documents (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        format TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL DEFAULT 0,
        model TEXT NOT NULL DEFAULT '',
        chunk_count INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE INDEX kb_documents_source ON kb_documents (source);
    CREATE TABLE kb_chunks (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        document_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        section TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        is_qa INTEGER NOT NULL DEFAULT 0,
        answer TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX kb_chunks_document ON kb_chunks (document_id, ordinal);
    CREATE VIRTUAL TABLE kb_fts USING fts5(
        head, body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE VIRTUAL TABLE kb_trigram USING fts5(body, content='', contentless_delete=1, tokenize='trigram');
    CREATE TABLE kb_embedding_cache (
        model TEXT NOT NULL,
        text_hash BLOB NOT NULL,
        embedding BLOB NOT NULL,
        PRIMARY KEY (model, text_hash)
    ) WITHOUT ROWID;
    CREATE TABLE kb_state (key TEXT PRIMARY KEY, value);
    INSERT INTO kb_state (key, value) VALUES ('version', 0);
    """,
    # 3: the answer cache (level L3; derived data, never replicated) and image attachments.
    """
    CREATE TABLE reply_cache (
        key TEXT PRIMARY KEY,
        reply BLOB NOT NULL,
        expires_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        visitor_id TEXT NOT NULL,
        data BLOB NOT NULL,
        hlc INTEGER NOT NULL
    );
    """,
    # 4: a copy of each chunk's vector and its sign bits, for the fast nearest-chunk index
    # (store/vector_index.py). Chunks ingested before stay NULL and are searched through vec0.
    """
    ALTER TABLE kb_chunks ADD COLUMN embedding BLOB;
    ALTER TABLE kb_chunks ADD COLUMN code BLOB;
    """,
    # 5: the live desk: who a queued conversation is assigned to and since when it waits, what
    # the visitor told us, the inbox columns, ratings, tickets, sign-in sessions, read marks.
    """
    ALTER TABLE conversations ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN queued_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN language TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN profile BLOB;
    ALTER TABLE conversations ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN last_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN last_role TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN last_visitor_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN rating INTEGER;
    ALTER TABLE conversations ADD COLUMN rating_comment TEXT NOT NULL DEFAULT '';
    CREATE INDEX conversations_queue ON conversations (status, owner, queued_hlc);
    CREATE INDEX conversations_visitor ON conversations (visitor_id, started_hlc);
    CREATE INDEX conversations_updated ON conversations (status, updated_hlc);
    ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN capacity INTEGER NOT NULL DEFAULT 3;
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        visitor_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL,
        contact TEXT NOT NULL,
        message TEXT NOT NULL,
        language TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',
        answer TEXT NOT NULL DEFAULT '',
        answered_by TEXT NOT NULL DEFAULT '',
        hlc INTEGER NOT NULL
    );
    CREATE INDEX tickets_status ON tickets (status, hlc);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE reads (
        user_name TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        hlc INTEGER NOT NULL,
        PRIMARY KEY (user_name, conversation_id)
    ) WITHOUT ROWID;
    CREATE TABLE attachment_visitors (
        attachment_id TEXT NOT NULL,
        visitor_id TEXT NOT NULL,
        PRIMARY KEY (attachment_id, visitor_id)
    ) WITHOUT ROWID;
    INSERT INTO attachment_visitors (attachment_id, visitor_id) SELECT id, visitor_id FROM attachments;
    """,
    # 6: the audit trail: from where (the client address, or "local" for the CLI), and the state
    # before and after the change (store/audit.py).
    """
    ALTER TABLE audit ADD COLUMN ip TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN before TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN after TEXT NOT NULL DEFAULT '';
    """,
    # 7: privacy operations (store/privacy.py): erasure tombstones, and which logged events are
    # about which conversation, visitor, ticket or upload, so erasure finds them without a scan.
    # Events logged before this migration are indexed on the first privacy operation.
    """
    CREATE TABLE erasures (
        subject_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        hlc INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE event_subjects (
        subject_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (subject_id, origin, seq)
    ) WITHOUT ROWID;
    CREATE TABLE event_subjects_backlog (origin TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO event_subjects_backlog (origin, seq) SELECT origin, max(seq) FROM events GROUP BY origin;
    """,
    # 8: Chinese is indexed as character bigrams in kb_fts (kb_index_text, registered by migrate),
    # which BM25 ranks better than single characters plus a trigram index: the trigram index goes.
    """
    DROP TABLE kb_trigram;
    DROP TABLE kb_fts;
    CREATE VIRTUAL TABLE kb_fts USING fts5(
        head, body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2'
    );
    INSERT INTO kb_fts (rowid, head, body)
        SELECT c.row,
               kb_index_text(CASE WHEN c.is_qa THEN c.section || char(10) || c.text
                                  ELSE d.title || char(10) || c.section END),
               kb_index_text(CASE WHEN c.is_qa THEN c.answer ELSE c.text END)
        FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id;
    """,
    # 9: replication (appliance/sync/). Conversation columns that several sites change carry the
    # (hlc, origin) of the change that set them, so events applied in any order give the same row; the
    # paired peers; what the node learned about itself (``seq_floor``: the first sequence number
    # of a new epoch after a restore from backup); updates that lost last-writer-wins, and
    # events that arrived under an (origin, seq) already holding another event, kept for review.
    """
    ALTER TABLE conversations ADD COLUMN state_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_message_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN subject_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN rating_hlc INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN state_origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN last_message_origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN subject_origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN rating_origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE feedback ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    UPDATE conversations SET state_hlc = updated_hlc, last_message_hlc = updated_hlc,
        subject_hlc = CASE WHEN subject = '' THEN 0 ELSE started_hlc END, rating_hlc = updated_hlc;
    CREATE TABLE sync_peers (
        node_id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL,
        added_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE node_state (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    CREATE TABLE lww_losers (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hlc INTEGER NOT NULL,
        winner_origin TEXT NOT NULL,
        winner_hlc INTEGER NOT NULL,
        PRIMARY KEY (origin, seq)
    ) WITHOUT ROWID;
    CREATE TABLE sync_collisions (
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hlc INTEGER NOT NULL,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        source TEXT NOT NULL,
        detected_ms INTEGER NOT NULL,
        PRIMARY KEY (origin, seq, hlc)
    ) WITHOUT ROWID;
    """,
    # The models' history over a window (store/model_history.py) reads traces by time.
    """
    CREATE INDEX traces_hlc ON traces (hlc);
    """,
    # webhooks (store/webhooks.py): receivers (replicated, last writer wins; ``removed`` a
    # tombstone), and this node's outbox of deliveries with every attempt (node-local rows,
    # written in the transaction that commits the event they announce).
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        removed INTEGER NOT NULL DEFAULT 0,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_status INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        done_ms INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
    CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, created_ms);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status_code INTEGER NOT NULL,
        error TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    ) WITHOUT ROWID;
    """,
    # 12: full-text search over messages (store/conversation_search.py: CJK runs as character
    # bigrams, message_index_text registered by migrate), with the messages stored so far; reports
    # find conversations by when they started (store/reports.py).
    """
    CREATE VIRTUAL TABLE message_fts USING fts5(
        body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2'
    );
    INSERT INTO message_fts (rowid, body) SELECT rowid, message_index_text(text) FROM messages;
    CREATE INDEX conversations_started ON conversations (started_hlc);
    """,
    # 13: intent examples added or removed in the console (store/intents.py), one row per
    # (intent, text), last writer wins; ``removed`` hides an example, the config's included.
    """
    CREATE TABLE intent_examples (
        id TEXT PRIMARY KEY,
        intent TEXT NOT NULL,
        text TEXT NOT NULL,
        removed INTEGER NOT NULL DEFAULT 0,
        hlc INTEGER NOT NULL,
        origin TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
]


def migrate(conn: Connection) -> int:
    """Bring the schema up to date; returns the resulting version."""
    from appliance.store.conversation_search import index_text
    from appliance.store.knowledge import cjk_spaced

    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.create_function("kb_index_text", 1, cjk_spaced, deterministic=True)
    conn.create_function("message_index_text", 1, index_text, deterministic=True)
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]}")
    return statements
