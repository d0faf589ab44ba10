-- Sending policy: rate limits that hold across sender processes, weighted
-- relays in groups, per-domain throttles, and campaigns that pause
-- themselves with a reason.

-- Relays: a share of the traffic by weight, a group campaigns can be pinned
-- to, and their own rate limits. A sliding-window cap is `window_messages`
-- per `window_secs` (50000 per 3600 for "50,000 an hour").
ALTER TABLE smtp_servers
    ADD COLUMN weight              integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    ADD COLUMN server_group        text NOT NULL DEFAULT 'default',
    ADD COLUMN messages_per_second double precision CHECK (messages_per_second > 0),
    ADD COLUMN window_messages     integer CHECK (window_messages >= 1),
    ADD COLUMN window_secs         integer CHECK (window_secs BETWEEN 1 AND 604800),
    ADD CONSTRAINT smtp_servers_window_whole
        CHECK ((window_messages IS NULL) = (window_secs IS NULL));

-- A campaign may be pinned to one group of relays; `status_reason` says why
-- it is in its state when the sender put it there (an automatic pause).
ALTER TABLE campaigns
    ADD COLUMN smtp_group    text,
    ADD COLUMN status_reason text;

-- The installation-wide limit; one row. NULL falls back to the configuration.
CREATE TABLE sending_limits (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    messages_per_second double precision CHECK (messages_per_second > 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sending_limits (id) VALUES (true);

-- Limits per recipient domain, set by users: concurrent sends in flight and
-- messages per minute, both across every sender process.
CREATE TABLE domain_limits (
    domain              text PRIMARY KEY,
    max_connections     integer CHECK (max_connections BETWEEN 1 AND 1000),
    messages_per_minute integer CHECK (messages_per_minute >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Limits the sender sets itself when a domain answers "slow down" (421,
-- 4.7.x), and raises again while the domain stays quiet. `ceiling` is the
-- rate it was slowed from: reaching it again lifts the throttle.
CREATE TABLE domain_throttles (
    domain              text PRIMARY KEY,
    messages_per_minute integer NOT NULL CHECK (messages_per_minute >= 1),
    ceiling             integer NOT NULL CHECK (ceiling >= 1),
    slowed_at           timestamptz NOT NULL DEFAULT now(),
    raised_at           timestamptz NOT NULL DEFAULT now()
);

-- Sender processes alive now. Connection limits are shared out between
-- them, so a relay sees its `max_connections` however many senders run.
CREATE TABLE sender_processes (
    id          uuid PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    alive_until timestamptz NOT NULL
);

-- Messages granted per rate limit, in time slots: a sliding window is the
-- sum of its recent slots. Unlogged: after a database crash the counts
-- restart from zero, which only forgets the last window.
CREATE UNLOGGED TABLE rate_counters (
    key        text NOT NULL,
    slot_ms    bigint NOT NULL,
    granted    integer NOT NULL,
    PRIMARY KEY (key, slot_ms)
);

-- Takes up to `want` messages from the limit `key` allowing `max_messages`
-- per `window_ms`; returns how many it may send. Concurrent callers are
-- serialised per key. A window is counted over 20 slots plus the two before
-- it, so grants used up to one slot late still never exceed the limit in
-- any window of that length.
CREATE FUNCTION take_rate(key text, max_messages integer, window_ms bigint, want integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    slot  bigint := greatest(window_ms / 20, 1);
    now_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
    this_slot bigint := now_ms - now_ms % slot;
    used  bigint;
    given integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('postino.rate'), hashtext(key));
    SELECT coalesce(sum(c.granted), 0) INTO used
    FROM rate_counters c
    WHERE c.key = take_rate.key AND c.slot_ms >= this_slot - window_ms - slot;
    given := least(want, greatest(max_messages - used, 0))::integer;
    IF given > 0 THEN
        INSERT INTO rate_counters AS c (key, slot_ms, granted)
        VALUES (take_rate.key, this_slot, given)
        ON CONFLICT ON CONSTRAINT rate_counters_pkey
        DO UPDATE SET granted = c.granted + excluded.granted;
    END IF;
    DELETE FROM rate_counters c
    WHERE c.key = take_rate.key AND c.slot_ms < this_slot - 2 * window_ms - slot;
    RETURN given;
END
$$;
