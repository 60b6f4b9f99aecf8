-- Server processes sharing this catalog (issue 11).
--
-- Each server process registers one row with an id unique to that run (host, pid and a random
-- suffix) and renews `heartbeat_at` every few seconds. A process whose heartbeat is older than the
-- registry's TTL is dead: its orchestration lease is taken over once it expires. Rows of dead
-- processes are pruned by the live ones. Times are Unix milliseconds, like every catalog time.
CREATE TABLE server_processes (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    listen       TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE INDEX server_processes_heartbeat ON server_processes (heartbeat_at);

-- Ownership of replication work, by source peer: every mirror of a source is run by the one live
-- process owning that source. `token` grows at every change of owner (and at a release), and a
-- worker's checkpoint and status writes carry it: a stale owner's write is refused in the same
-- transaction. `owner` is '' while nobody owns the source; an owner whose `expires_at` passed
-- (it stopped renewing) may be replaced.
CREATE TABLE source_owners (
    source_peer_id TEXT    PRIMARY KEY,
    owner          TEXT    NOT NULL DEFAULT '',
    token          INTEGER  NOT NULL DEFAULT 0,
    expires_at     INTEGER  NOT NULL DEFAULT 0
);
CREATE INDEX source_owners_owner ON source_owners (owner);
