-- How a peer's changes are captured when it is a source: `logical` (Postgres logical decoding,
-- the default for new Postgres peers) or `trigger` (a trigger-fed change log: SQLite peers, and
-- Postgres hosts without logical decoding). Peers recorded before this existed used triggers.
ALTER TABLE peers ADD COLUMN capture TEXT NOT NULL DEFAULT 'trigger';
