-- Every change gets a random stamp, and the version row keeps the stamp of
-- the latest change: two histories that reached the same version (the
-- database restored to an earlier point, then written again) differ in it.
ALTER TABLE bbs_version ADD COLUMN stamp bigint NOT NULL DEFAULT 0;
ALTER TABLE topic_changes ADD COLUMN stamp bigint NOT NULL DEFAULT 0;
-- committed_at is the database's clock, so pruning by age cannot be fooled
-- by a replica whose clock is wrong.
ALTER TABLE topic_changes ALTER COLUMN committed_at SET DEFAULT now();
-- A delete records the topic that slides into the first page (the window)
-- as it was at that version, so every replica and client refills alike.
ALTER TABLE topic_changes ADD COLUMN fill_id bigint;
ALTER TABLE topic_changes ADD COLUMN fill_comment text;
ALTER TABLE topic_changes ADD COLUMN fill_created_at timestamptz;
ALTER TABLE topic_changes ADD COLUMN fill_updated_at timestamptz;
-- A create sent with an Idempotency-Key stores the key's hash: a retry of
-- a write whose outcome was unknown finds the topic instead of making a
-- second one.
ALTER TABLE topics ADD COLUMN idem_hash bytea;
CREATE UNIQUE INDEX topics_idem_hash ON topics (idem_hash) WHERE idem_hash IS NOT NULL;
-- A delete scrubs its topic's text from the log, found by these.
CREATE INDEX topic_changes_topic_id ON topic_changes (topic_id);
CREATE INDEX topic_changes_fill_id ON topic_changes (fill_id) WHERE fill_id IS NOT NULL;
