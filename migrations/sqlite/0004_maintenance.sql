-- Maintenance windows, their step log, per-mirror backup entries, request history, the
-- orchestration lease and the gate row.
--
-- "In maintenance" is derived: a window with `active = 1`. The UNIQUE constraint on `active`
-- (NULL once the window has ended) lets the database itself refuse a second active window.
CREATE TABLE maintenance_windows (
    id               TEXT    PRIMARY KEY,
    reason           TEXT    NOT NULL,
    requested_by     TEXT    NOT NULL,
    scope            TEXT    NOT NULL, -- JSON: {"kind":"all"} | {"kind":"mirrors","ids":[…]} | {"kind":"peers","ids":[…]}
    phase            TEXT    NOT NULL,
    step             TEXT    NOT NULL,
    step_started_at  INTEGER NOT NULL,
    active           INTEGER UNIQUE CHECK (active = 1),
    error            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    ended_at         INTEGER
);
CREATE INDEX maintenance_windows_created ON maintenance_windows (created_at);

CREATE TABLE maintenance_steps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    window_id    TEXT    NOT NULL REFERENCES maintenance_windows (id),
    step         TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL
);
CREATE INDEX maintenance_steps_window ON maintenance_steps (window_id, id);

-- One row per mirror a window paused, written in the same transaction as its maintenance hold.
CREATE TABLE maintenance_backups (
    window_id            TEXT    NOT NULL REFERENCES maintenance_windows (id),
    mirror_id            TEXT    NOT NULL REFERENCES mirrors (id),
    mirror_name          TEXT    NOT NULL,
    status_before        TEXT    NOT NULL,
    checkpoint_at_pause  TEXT    NOT NULL, -- JSON checkpoint
    config               TEXT    NOT NULL, -- JSON: tables and peers
    paused_at            INTEGER NOT NULL,
    outcome              TEXT,
    outcome_detail       TEXT,
    released_at          INTEGER,
    checkpoint_at_resume TEXT,
    PRIMARY KEY (window_id, mirror_id)
);

-- Operator decisions to stop waiting for one mirror's snapshot.
CREATE TABLE maintenance_skips (
    window_id   TEXT    NOT NULL REFERENCES maintenance_windows (id),
    mirror_id   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (window_id, mirror_id)
);

-- Every request, accepted or not.
CREATE TABLE maintenance_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    window_id   TEXT,
    outcome     TEXT    NOT NULL,
    error       TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX maintenance_requests_at ON maintenance_requests (at);

-- The single orchestration lease; `token` only ever grows (fencing).
CREATE TABLE orchestration_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT    NOT NULL,
    token       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- The row every gated change locks in share mode and every window change locks exclusively
-- (Postgres), so a gate check never races a window being opened.
CREATE TABLE maintenance_gate (
    id INTEGER PRIMARY KEY CHECK (id = 1)
);
INSERT INTO maintenance_gate (id) VALUES (1);
-- Token 0 means "never taken".
INSERT INTO orchestration_lease (id, holder, token, acquired_at, expires_at) VALUES (1, '', 0, 0, 0);
