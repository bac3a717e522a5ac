CREATE TABLE topics (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: ids never reused
    comment    TEXT     NOT NULL,
    token_hash BLOB     NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    deleted_at DATETIME
);
CREATE INDEX topics_live_id ON topics (id DESC) WHERE deleted_at IS NULL;

CREATE TABLE bbs_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v  INTEGER NOT NULL
);
INSERT INTO bbs_version (id, v) VALUES (1, 0);

CREATE TABLE topic_changes (
    version      INTEGER PRIMARY KEY,
    kind         TEXT     NOT NULL,
    topic_id     INTEGER  NOT NULL,
    comment      TEXT,
    created_at   DATETIME,
    updated_at   DATETIME,
    committed_at DATETIME NOT NULL
);
CREATE INDEX topic_changes_committed_at ON topic_changes (committed_at);
