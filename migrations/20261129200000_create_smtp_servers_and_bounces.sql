-- The sender: the relays it sends through, the bounces it records, and the
-- queue index it claims from.

CREATE TABLE smtp_servers (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                    uuid NOT NULL UNIQUE,
    name                    text NOT NULL UNIQUE,
    host                    text NOT NULL,
    port                    integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls                     text NOT NULL CHECK (tls IN ('none', 'starttls', 'tls')),
    username                text NOT NULL DEFAULT '',
    -- Never returned by the API nor logged. Anyone who can read this table
    -- can read the relay password, as with any mail server's configuration.
    password                text NOT NULL DEFAULT '',
    hello_name              text NOT NULL,
    max_connections         integer NOT NULL CHECK (max_connections BETWEEN 1 AND 1000),
    -- A connection is closed and reopened after this many messages; relays
    -- often cap it, and a fresh connection rebalances behind load balancers.
    messages_per_connection integer NOT NULL CHECK (messages_per_connection >= 1),
    timeout_secs            integer NOT NULL CHECK (timeout_secs BETWEEN 1 AND 3600),
    enabled                 boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A hard bounce is a permanent refusal (5xx) of one delivery; enough of them
-- blocklist the subscriber. Soft bounces and complaints arrive with bounce
-- intake (DSN mail, provider webhooks).
CREATE TABLE bounces (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    campaign_id   bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    delivery_id   bigint REFERENCES deliveries (id) ON DELETE SET NULL,
    kind          text NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    -- 'smtp': the relay's reply to our own delivery attempt.
    source        text NOT NULL,
    code          integer,
    reply         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bounces_subscriber ON bounces (subscriber_id, kind);
CREATE INDEX bounces_campaign ON bounces (campaign_id);
CREATE INDEX bounces_delivery ON bounces (delivery_id);

ALTER TABLE subscription_events DROP CONSTRAINT subscription_events_kind_check;
ALTER TABLE subscription_events ADD CONSTRAINT subscription_events_kind_check
    CHECK (kind IN ('unsubscribed', 'blocklisted'));

-- Retries give up by the age of the first attempt, not of the enqueue: a
-- campaign paused for days must not fail its deliveries on first contact.
ALTER TABLE deliveries ADD COLUMN first_attempt_at timestamptz;

-- Senders claim per campaign, so campaigns running at once share the
-- workers fairly instead of the oldest draining first.
DROP INDEX deliveries_queued;
CREATE INDEX deliveries_queued ON deliveries (campaign_id, run_at, id) WHERE status = 'queued';
