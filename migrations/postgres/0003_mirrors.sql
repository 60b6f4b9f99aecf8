-- Peers (database endpoints) and mirrors (replication jobs), with their holds.
-- `url` holds the connection URL with credentials: only the engine reads it; pages get `location`.
CREATE TABLE peers (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    location    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE mirrors (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    source_peer_id  TEXT    NOT NULL,
    dest_peer_id    TEXT    NOT NULL,
    tables          TEXT    NOT NULL, -- JSON array of table names
    status          TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    table_index     BIGINT  NOT NULL,
    last_pk         TEXT,             -- JSON array: the last primary key copied
    change_id       BIGINT  NOT NULL, -- high-water mark (snapshot) or last change applied (cdc)
    rows_copied     BIGINT  NOT NULL,
    rows_applied    BIGINT  NOT NULL,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- Dropped mirrors stay for the record; only live ones need distinct names.
CREATE UNIQUE INDEX mirrors_live_name ON mirrors (name) WHERE status <> 'dropped';
CREATE INDEX mirrors_source ON mirrors (source_peer_id);

CREATE TABLE mirror_holds (
    mirror_id   TEXT    NOT NULL REFERENCES mirrors (id),
    hold        TEXT    NOT NULL, -- `user` or `maintenance:<window id>`
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (mirror_id, hold)
);
