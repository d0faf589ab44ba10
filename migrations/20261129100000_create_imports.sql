-- CSV imports run as jobs: one row per uploaded file, claimed by a worker in
-- any `postino serve` process with a lease, so a job outlives the request that
-- created it and the process that started it.

CREATE TABLE imports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid          uuid NOT NULL UNIQUE,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
    mode          text NOT NULL CHECK (mode IN ('subscribe', 'unsubscribe', 'blocklist')),
    -- Overwrite the name and merge the attributes of existing subscribers.
    overwrite     boolean NOT NULL DEFAULT false,
    -- The caller states the addresses were confirmed (double opt-in lists).
    confirmed     boolean NOT NULL DEFAULT false,
    -- Internal list keys; a deleted list simply drops out of the import.
    list_ids      bigint[] NOT NULL DEFAULT '{}',
    -- The file as named by the uploader, for display.
    file_name     text NOT NULL DEFAULT '',
    -- Where the bytes are; see postino_importer::store for why on disk.
    file_path     text NOT NULL,
    -- Uploads are ours to delete when the job ends; a file named on the
    -- command line belongs to the user and is never deleted.
    owns_file     boolean NOT NULL DEFAULT true,
    file_bytes    bigint NOT NULL DEFAULT 0,
    -- Progress, committed in the same transaction as each batch of rows, so a
    -- restarted job resumes exactly after the last committed batch.
    bytes_read    bigint NOT NULL DEFAULT 0,
    rows_read     bigint NOT NULL DEFAULT 0,
    imported      bigint NOT NULL DEFAULT 0,
    updated       bigint NOT NULL DEFAULT 0,
    skipped       bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    -- Why the whole job failed (not a row error).
    error         text,
    -- Changes on every claim; a worker whose token no longer matches has lost
    -- the job (cancelled, or taken over after its lease expired).
    lease_token   uuid,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The claim query: queued jobs in order, and running jobs whose lease expired.
CREATE INDEX imports_claimable ON imports (created_at) WHERE status IN ('queued', 'running');

-- Rows an import could not take, with the line as read and the reason.
CREATE TABLE import_errors (
    import_id bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      bigint NOT NULL,
    original  text NOT NULL,
    reason    text NOT NULL,
    PRIMARY KEY (import_id, line)
);
