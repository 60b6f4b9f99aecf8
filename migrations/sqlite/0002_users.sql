-- People who may sign in, and the audit of what they did to accounts and sessions.
CREATE TABLE users (
    id             TEXT    PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled       INTEGER NOT NULL DEFAULT 0,
    -- Bumped when the password is reset or the user disabled: older sessions stop working.
    session_epoch  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    actor    TEXT,
    subject  TEXT,
    client   TEXT,
    detail   TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
