-- What each scheduler and sender process has done lately, counted rather
-- than timed: a pass is one look at the work (a scheduler tick; a sender
-- claiming from the queue), `claimed` the deliveries a sender took, and
-- `reloads` its rereads of the relays and the policy. "The sender looked
-- after X happened" is then a counter that moved, which operators can read
-- and tests can wait for, instead of a guess about how long looking takes.
-- Rows of processes not seen for an hour are deleted by the scheduler.
CREATE TABLE heartbeats (
    process    uuid NOT NULL,
    role       text NOT NULL CHECK (role IN ('scheduler', 'sender')),
    pid        integer NOT NULL,
    passes     bigint NOT NULL DEFAULT 0,
    claimed    bigint NOT NULL DEFAULT 0,
    reloads    bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, role)
);
