-- The priority lane of the delivery queue. A delivery is a campaign
-- recipient's copy ('campaign', the bulk queue) or a single message that
-- somebody is waiting for: 'test', a campaign sent to an address typed in
-- by a user. Later kinds ('confirmation', 'transactional', 'submission')
-- join them by replacing the deliveries_kind check; everything that is not
-- 'campaign' is priority mail, claimed by the sender ahead of bulk work,
-- through the same relays, limits and DKIM keys, and kept out of every
-- campaign count.
--
-- A priority delivery has a campaign (for a test send, the one tested) but
-- not always a subscriber: a test goes to an address that may be nobody's.
-- Its recipient is then `email`. The unique key on (campaign_id,
-- subscriber_id) is unaffected: test rows leave subscriber_id NULL, and
-- NULLs never collide.
ALTER TABLE deliveries
    ADD COLUMN kind text NOT NULL DEFAULT 'campaign',
    ADD COLUMN email text,
    ALTER COLUMN subscriber_id DROP NOT NULL,
    ADD CONSTRAINT deliveries_kind CHECK (kind IN ('campaign', 'test')),
    ADD CONSTRAINT deliveries_campaign_has_subscriber
        CHECK (kind <> 'campaign' OR subscriber_id IS NOT NULL),
    ADD CONSTRAINT deliveries_has_recipient
        CHECK (subscriber_id IS NOT NULL OR email IS NOT NULL);

-- The priority claim's query: queued priority rows, oldest first, whatever
-- campaign they belong to. Normally a handful of rows, so the sender can
-- look on every pass.
CREATE INDEX deliveries_priority ON deliveries (run_at, id)
    WHERE status = 'queued' AND kind <> 'campaign';

-- Finished test sends are deleted after a day; this finds them without
-- reading the bulk rows.
CREATE INDEX deliveries_priority_age ON deliveries (updated_at)
    WHERE kind <> 'campaign';
