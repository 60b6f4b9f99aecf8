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
    created_at  BIGINT  NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    hook_id         TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL,
    -- delivering, delivered, failed, dropped
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL,
    last_error      TEXT,
    response_status BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (hook_id, id);

-- Planned (scheduled) maintenance windows. `state`: planned → starting (one process claimed it)
-- → started (window_id set), or cancelled. `overdue_at` is set once the overdue warning went out.
CREATE TABLE planned_windows (
    id             TEXT    PRIMARY KEY,
    reason         TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    requested_by   TEXT    NOT NULL,
    planned_start  BIGINT  NOT NULL,
    planned_end    BIGINT  NOT NULL,
    auto_disable   BOOLEAN NOT NULL,
    state          TEXT    NOT NULL,
    window_id      TEXT,
    overdue_at     BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX planned_windows_state ON planned_windows (state, planned_start);
