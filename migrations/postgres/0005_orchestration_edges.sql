-- Orchestration at the edges (issue 12).
--
-- `resume_pending`: set when a hold release lets a mirror run again, cleared by its worker once
-- it has really worked (applied a batch, or found itself caught up) — disable confirms on that,
-- not on its own status write.
-- `replace_destination`: the creator asked for the destination tables' existing rows to be
-- replaced; the worker empties them in setup before the snapshot.
ALTER TABLE mirrors ADD COLUMN resume_pending BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE mirrors ADD COLUMN replace_destination BOOLEAN NOT NULL DEFAULT FALSE;

-- The checkpoint the worker really stopped at when it confirmed the pause (the hold records
-- the one it had when the hold was written), and when.
ALTER TABLE maintenance_backups ADD COLUMN checkpoint_confirmed TEXT;
ALTER TABLE maintenance_backups ADD COLUMN confirmed_at BIGINT;

CREATE INDEX maintenance_requests_outcome ON maintenance_requests (outcome, id);
