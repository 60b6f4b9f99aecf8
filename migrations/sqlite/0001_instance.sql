-- The installation's identity: exactly one row (singleton = 1).
CREATE TABLE instance (
    singleton        INTEGER PRIMARY KEY CHECK (singleton = 1),
    id               TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    version          TEXT    NOT NULL,
    starts           INTEGER NOT NULL,
    last_started_at  INTEGER NOT NULL
);
