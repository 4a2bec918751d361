-- Records: one row per (kind, mesh, name). Times are Unix nanoseconds from
-- the CP's clock (they round-trip exactly), expires_at 0 means "never".
-- COLLATE "C" makes ORDER BY byte-wise, like the other stores.
CREATE TABLE records (
    kind        text COLLATE "C" NOT NULL,
    mesh        text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    spec        bytea  NOT NULL,
    created_at  bigint NOT NULL,
    modified_at bigint NOT NULL,
    expires_at  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, mesh, name)
);

CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at <> 0;

-- Leases: at most one holder per name until expires_at, on the database's
-- clock so replicas with skewed clocks agree.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
