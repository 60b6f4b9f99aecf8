-- Mirrors by destination peer: the Peers page counts each peer's mirrors, and the mirror list
-- filters by peer (as source or destination).
CREATE INDEX mirrors_dest ON mirrors (dest_peer_id);

-- A mirror's entries in open windows: confirming a pause records where it stopped there. The
-- primary key starts with the window, so without this every confirmation read every entry of
-- every window (10,000 pauses took ~30 s on SQLite).
CREATE INDEX maintenance_backups_open ON maintenance_backups (mirror_id) WHERE released_at IS NULL;
