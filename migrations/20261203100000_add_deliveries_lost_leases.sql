-- A delivery whose sender died while holding it (its lease expired before a
-- result was recorded) counts that here. Such a delivery is a suspect: it
-- is claimed alone, one at a time per sender, so that if it is what kills
-- senders it takes no other delivery with it; after a few such deaths it
-- is failed with the reason instead of being requeued to kill the next
-- sender too.
ALTER TABLE deliveries ADD COLUMN lost_leases smallint NOT NULL DEFAULT 0;

-- Suspects waiting to be claimed: normally none, so this stays tiny while
-- the claim looks for one on every pass.
CREATE INDEX deliveries_suspects ON deliveries (campaign_id, run_at, id)
    WHERE status = 'queued' AND lost_leases > 0;
