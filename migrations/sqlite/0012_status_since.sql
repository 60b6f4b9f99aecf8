-- When each mirror entered its current status: pages say "in this state since 10:02". Kept by the
-- catalog itself, so every writer of `status` (one mirror or a bulk statement) keeps it right: a
-- change of status stamps the row's `updated_at`, which every such write sets.
ALTER TABLE mirrors ADD COLUMN status_since INTEGER NOT NULL DEFAULT 0;
UPDATE mirrors SET status_since = updated_at;

CREATE TRIGGER mirrors_status_since AFTER UPDATE OF status ON mirrors
WHEN NEW.status IS NOT OLD.status
BEGIN
    UPDATE mirrors SET status_since = NEW.updated_at WHERE id = NEW.id;
END;
