-- See the Postgres migration of the same number for why.
ALTER TABLE bbs_version ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE topic_changes ADD COLUMN stamp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE topic_changes ADD COLUMN fill_id INTEGER;
ALTER TABLE topic_changes ADD COLUMN fill_comment TEXT;
ALTER TABLE topic_changes ADD COLUMN fill_created_at DATETIME;
ALTER TABLE topic_changes ADD COLUMN fill_updated_at DATETIME;
ALTER TABLE topics ADD COLUMN idem_hash BLOB;
CREATE UNIQUE INDEX topics_idem_hash ON topics (idem_hash) WHERE idem_hash IS NOT NULL;
-- A delete scrubs its topic's text from the log, found by these.
CREATE INDEX topic_changes_topic_id ON topic_changes (topic_id);
CREATE INDEX topic_changes_fill_id ON topic_changes (fill_id) WHERE fill_id IS NOT NULL;
