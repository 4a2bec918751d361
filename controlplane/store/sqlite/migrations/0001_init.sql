-- Records: one row per (kind, mesh, name). Times are Unix nanoseconds,
-- expires_at 0 means "never".
CREATE TABLE records (
    kind        TEXT    NOT NULL,
    mesh        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    spec        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, mesh, name)
) WITHOUT ROWID;

CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at <> 0;

-- Changes: the log other store instances on the same file poll.
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    origin  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    mesh    TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    op      INTEGER NOT NULL,
    at      INTEGER NOT NULL
);

CREATE INDEX changes_at ON changes (at);

-- Leases: at most one holder per name until expires_at (Unix nanoseconds).
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
