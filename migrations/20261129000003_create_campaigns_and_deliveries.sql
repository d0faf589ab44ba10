-- Layouts, campaigns, their target lists, and the per-recipient delivery
-- queue that the scheduler fills and the sender drains.

CREATE TABLE templates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid        uuid NOT NULL UNIQUE,
    name        text NOT NULL,
    -- HTML with a {{ content }} slot where the campaign body goes.
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaigns (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid            uuid NOT NULL UNIQUE,
    name            text NOT NULL,
    subject         text NOT NULL,
    from_name       text NOT NULL DEFAULT '',
    from_email      text NOT NULL,
    reply_to        text,
    body            text NOT NULL,
    body_format     text NOT NULL CHECK (body_format IN ('html', 'markdown', 'text')),
    -- Plain-text alternative; generated from the HTML when NULL.
    text_body       text,
    template_id     bigint REFERENCES templates (id) ON DELETE RESTRICT,
    tags            text[] NOT NULL DEFAULT '{}',
    -- Extra headers as [{"name": …, "value": …}], validated before storing.
    headers         jsonb NOT NULL DEFAULT '[]',
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'finished', 'cancelled')),
    send_at         timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    -- Enqueue progress: deliveries exist for every eligible subscriber with
    -- id <= enqueue_cursor; enqueued_at is set once the audience is exhausted.
    enqueue_cursor  bigint NOT NULL DEFAULT 0,
    enqueued_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'scheduled' OR send_at IS NOT NULL)
);

-- The scheduler's hot queries: due scheduled campaigns, running ones.
CREATE INDEX campaigns_active ON campaigns (status, send_at) WHERE status IN ('scheduled', 'running');

CREATE TABLE campaign_lists (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    list_id     bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, list_id)
);

CREATE INDEX campaign_lists_list ON campaign_lists (list_id);

CREATE TABLE deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts      integer NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL DEFAULT now(),
    -- While 'sending': the claim expires at this time and the row goes back
    -- to the queue, so a crashed worker loses nothing.
    lease_until   timestamptz,
    -- The last SMTP reply (or connection error), kept for "who did not get it, and why".
    last_code     integer,
    last_reply    text,
    sent_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The invariant: one delivery per recipient per campaign, whoever enqueues.
    UNIQUE (campaign_id, subscriber_id)
);

-- The sender's claim query: due queued rows, oldest first. Partial, so it
-- stays small however many rows are finished.
CREATE INDEX deliveries_queued ON deliveries (run_at, id) WHERE status = 'queued';
-- Expired leases, for the reaper.
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE status = 'sending';
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);

-- Unsubscribes and other changes a subscriber made, with where they came from.
CREATE TABLE subscription_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id       bigint REFERENCES lists (id) ON DELETE SET NULL,
    campaign_id   bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    kind          text NOT NULL CHECK (kind IN ('unsubscribed')),
    -- 'link' (the page in the message) or 'one-click' (RFC 8058 POST from the mail client).
    source        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX subscription_events_subscriber ON subscription_events (subscriber_id);

-- Secrets Postino generates for itself when none is configured (the key that
-- signs links in messages), so links stay valid across restarts.
CREATE TABLE app_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
