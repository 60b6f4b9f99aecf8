-- Maintenance from pipelines: the software version an upgrade hook records on its window, and
-- webhooks (admin-registered URLs that receive signed window and mirror events) with their
-- delivery log.
ALTER TABLE maintenance_windows ADD COLUMN version TEXT;

CREATE TABLE webhooks (
    id          TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    -- The HMAC key, sealed like peer URLs (`enc:v1:…`).
    secret      TEXT    NOT NULL,
    -- JSON list of event groups: "window", "mirror".
    events      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id         TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL,
    -- delivering, delivered, failed, dropped
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    last_error      TEXT,
    response_status INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook_id, id);

-- Planned (scheduled) maintenance windows. `state`: planned → starting (one process claimed it)
-- → started (window_id set), or cancelled. `overdue_at` is set once the overdue warning went out.
CREATE TABLE planned_windows (
    id             TEXT    PRIMARY KEY,
    reason         TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    requested_by   TEXT    NOT NULL,
    planned_start  INTEGER NOT NULL,
    planned_end    INTEGER NOT NULL,
    auto_disable   INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    window_id      TEXT,
    overdue_at     INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX planned_windows_state ON planned_windows (state, planned_start);
