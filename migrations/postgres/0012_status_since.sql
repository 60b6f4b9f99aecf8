-- When each mirror entered its current status: pages say "in this state since 10:02". Kept by the
-- catalog itself, so every writer of `status` (one mirror or a bulk statement) keeps it right: a
-- change of status stamps the row's `updated_at`, which every such write sets.
ALTER TABLE mirrors ADD COLUMN status_since BIGINT NOT NULL DEFAULT 0;
UPDATE mirrors SET status_since = updated_at;

CREATE FUNCTION quiesce_mirror_status_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_since := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mirrors_status_since BEFORE UPDATE OF status ON mirrors
FOR EACH ROW EXECUTE FUNCTION quiesce_mirror_status_since();
