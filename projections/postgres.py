"""The built-in projections' tables on PostgreSQL: the same names, columns and meaning as on SQLite.

What differs, and why:

* Every text column is ``COLLATE "C"``: text compares and sorts by code
  point, as SQLite's BINARY collation does, whatever the database's locale,
  so orders, keyset cursors and time comparisons agree with SQLite.
* 64-bit integers are ``BIGINT``, reals ``DOUBLE PRECISION``.
* ``session_tags`` and ``session_metadata`` have a ``rowid`` column for
  their insertion order (SQLite's implicit rowid): the event's position
  times ``ORDER_STEP`` plus the row's index within the event, so a replaced
  metadata key moves last, as SQLite's ``INSERT OR REPLACE`` moves it, and a
  rebuild gives the same numbers as the inline updates did.
* ``messages.content`` cannot hold U+0000 in PostgreSQL text: there it holds
  the content with each NUL replaced by U+FFFD, and ``content_exact`` holds
  the exact content as a JSON string, only for a message that had a NUL
  (NULL otherwise). The conversation readers return the exact text.
* ``session_metadata.value`` is indexed by hash: a metadata value may be
  larger than a B-tree entry can be.
* The search index (``SearchProjector``) is the table ``messages_fts``: a
  ``tsvector`` per message under the text search configuration
  ``ledger_english`` (English stemming, like FTS5's porter tokenizer, with
  no stop words, so that every word can be searched for, as on SQLite).
"""

from __future__ import annotations

#: ``rowid`` of a tag or metadata row: the position of the event that wrote it times this, plus its index
#: (one event writes at most a session's tags or metadata keys: far fewer than this under any sane ``Limits``).
ORDER_STEP = 1 << 20

#: The text search configuration of the search index and queries (created by ``SearchProjector``).
TEXT_CONFIG = "ledger_english"

_TEXT = 'TEXT COLLATE "C"'

SESSIONS_SCHEMA: tuple[str, ...] = (
    f"""CREATE TABLE sessions (
    session_id {_TEXT} PRIMARY KEY,
    parent_id {_TEXT},
    user_id {_TEXT},
    purpose {_TEXT},
    status {_TEXT} NOT NULL,
    created_at {_TEXT} NOT NULL,
    updated_at {_TEXT} NOT NULL,
    completed_at {_TEXT},
    completion_reason {_TEXT},
    version BIGINT NOT NULL,
    position BIGINT NOT NULL,
    message_count BIGINT DEFAULT 0,
    invocation_count BIGINT DEFAULT 0,
    total_duration_ms DOUBLE PRECISION DEFAULT 0.0,
    tokens_in BIGINT DEFAULT 0,
    tokens_out BIGINT DEFAULT 0,
    tokens_cache_read BIGINT DEFAULT 0,
    tokens_cache_creation BIGINT DEFAULT 0,
    tokens_reasoning BIGINT DEFAULT 0,
    estimated_cost DOUBLE PRECISION DEFAULT 0.0,
    tools_used {_TEXT} DEFAULT '[]'
)""",
    f"""CREATE TABLE session_tags (
    session_id {_TEXT},
    tag {_TEXT} NOT NULL,
    rowid BIGINT NOT NULL,
    PRIMARY KEY (session_id, tag)
)""",
    f"""CREATE TABLE session_metadata (
    session_id {_TEXT},
    key {_TEXT},
    value {_TEXT} NOT NULL,
    rowid BIGINT NOT NULL,
    PRIMARY KEY (session_id, key)
)""",
    f"""CREATE TABLE session_data (
    session_id {_TEXT},
    key {_TEXT},
    value {_TEXT} NOT NULL,
    PRIMARY KEY (session_id, key)
)""",
    f"""CREATE TABLE session_segments (
    session_id {_TEXT},
    seq BIGINT,
    seg_session {_TEXT} NOT NULL,
    first BIGINT NOT NULL,
    last BIGINT,
    hidden BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seq)
)""",
    f"""CREATE TABLE messages (
    position BIGINT PRIMARY KEY,
    session_id {_TEXT} NOT NULL,
    version BIGINT NOT NULL,
    role {_TEXT} NOT NULL,
    content {_TEXT} NOT NULL,
    tool_name {_TEXT},
    invocation_id {_TEXT},
    model {_TEXT},
    tokens_in BIGINT,
    tokens_out BIGINT,
    recorded_at {_TEXT} NOT NULL,
    content_exact {_TEXT},
    retracted_at BIGINT,
    blocks {_TEXT},
    tokens_cache_read BIGINT,
    tokens_cache_creation BIGINT,
    tokens_reasoning BIGINT
)""",
    f"""CREATE TABLE invocations (
    position BIGINT PRIMARY KEY,
    session_id {_TEXT} NOT NULL,
    version BIGINT NOT NULL,
    invocation_id {_TEXT} NOT NULL,
    tool_name {_TEXT} NOT NULL,
    duration_ms DOUBLE PRECISION,
    tokens_in BIGINT,
    tokens_out BIGINT,
    cost DOUBLE PRECISION,
    status {_TEXT} NOT NULL,
    artifact {_TEXT},
    recorded_at {_TEXT} NOT NULL,
    tokens_cache_read BIGINT,
    tokens_cache_creation BIGINT,
    tokens_reasoning BIGINT
)""",
    # The same indexes as on SQLite (a query needs each one), but the metadata values' (see above).
    "CREATE INDEX idx_sessions_created_at ON sessions (created_at)",
    "CREATE INDEX idx_sessions_updated_at ON sessions (updated_at)",
    "CREATE INDEX idx_sessions_status_created_at ON sessions (status, created_at)",
    "CREATE INDEX idx_sessions_user_id_created_at ON sessions (user_id, created_at)",
    "CREATE INDEX idx_sessions_parent_id ON sessions (parent_id)",
    "CREATE INDEX idx_session_tags_tag_session_id ON session_tags (tag, session_id)",
    "CREATE INDEX idx_session_metadata_value ON session_metadata USING hash (value)",
    "CREATE INDEX idx_session_segments_seg_session_first ON session_segments (seg_session, first)",
    "CREATE INDEX idx_invocations_invocation_id ON invocations (invocation_id)",
)

SEARCH_SCHEMA: tuple[str, ...] = (
    # The English Snowball stemmer of the built-in ``english`` configuration, without its stop-word list.
    "CREATE TEXT SEARCH DICTIONARY ledger_english_stem (TEMPLATE = pg_catalog.snowball, Language = english)",
    f"CREATE TEXT SEARCH CONFIGURATION {TEXT_CONFIG} (COPY = pg_catalog.english)",
    f"ALTER TEXT SEARCH CONFIGURATION {TEXT_CONFIG} ALTER MAPPING REPLACE english_stem WITH ledger_english_stem",
    "CREATE TABLE messages_fts (position BIGINT PRIMARY KEY, document TSVECTOR NOT NULL)",
    "CREATE INDEX messages_fts_document ON messages_fts USING gin (document)",
)

SEARCH_DROP: tuple[str, ...] = (
    "DROP TABLE IF EXISTS messages_fts",
    f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {TEXT_CONFIG}",
    "DROP TEXT SEARCH DICTIONARY IF EXISTS ledger_english_stem",
)

RECORDS_SCHEMA: tuple[str, ...] = (
    f"""CREATE TABLE records (
    position BIGINT PRIMARY KEY,
    session_id {_TEXT} NOT NULL,
    kind {_TEXT} NOT NULL,
    key {_TEXT} NOT NULL,
    record_group {_TEXT},
    removed_at BIGINT
)""",
    "CREATE INDEX idx_records_key ON records (session_id, kind, key, position)",
    "CREATE INDEX idx_records_group ON records (record_group, session_id, position) WHERE record_group IS NOT NULL",
)
