CREATE TABLE topics (
    id         bigserial PRIMARY KEY,
    comment    text        NOT NULL,
    token_hash bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
-- The board reads live topics newest first.
CREATE INDEX topics_live_id ON topics (id DESC) WHERE deleted_at IS NULL;

-- One row: the cluster-wide version. Its row lock orders the commits.
CREATE TABLE bbs_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    v  bigint   NOT NULL
);
INSERT INTO bbs_version (id, v) VALUES (1, 0);

-- What each version did, so a replica or client that missed it can replay it.
CREATE TABLE topic_changes (
    version      bigint PRIMARY KEY,
    kind         text        NOT NULL,
    topic_id     bigint      NOT NULL,
    comment      text,
    created_at   timestamptz,
    updated_at   timestamptz,
    committed_at timestamptz NOT NULL
);
CREATE INDEX topic_changes_committed_at ON topic_changes (committed_at);
