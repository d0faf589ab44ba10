-- Who a campaign is for, written once: an enabled subscriber with a
-- membership on one of the campaign's lists that is confirmed, or
-- unconfirmed on a single opt-in list. Blocklisted subscribers,
-- unsubscribed memberships and unconfirmed ones on double opt-in lists are
-- not in it. One row per eligible membership with a subscriber key above
-- `after`: a subscriber on two target lists appears twice, once per list.
--
-- The scheduler enqueues from it (a campaign's audience in subscriber order
-- from its cursor) and the sender checks a claimed recipient against it
-- (from just below their key, which leaves only their own memberships)
-- before sending.
--
-- A function rather than a view for the cursor: the planner does not carry
-- `subscriber_id > after` from the memberships over to the subscribers they
-- join, so a view read from a cursor walked the subscribers' key from the
-- first row on every step; here both sides start at the cursor. It is a
-- single SELECT in SQL, STABLE and not STRICT, so the planner inlines it
-- into the calling query and plans it with the caller's indexes (EXPLAIN
-- shows the base tables, not a function scan).
CREATE FUNCTION campaign_audience(campaign bigint, after bigint)
RETURNS TABLE (subscriber_id bigint, list_id bigint, list_uuid uuid)
LANGUAGE sql STABLE AS $$
    SELECT sl.subscriber_id, sl.list_id, l.uuid
    FROM campaign_lists cl
    JOIN lists l ON l.id = cl.list_id
    JOIN subscriber_lists sl ON sl.list_id = cl.list_id
    JOIN subscribers s ON s.id = sl.subscriber_id
    WHERE cl.campaign_id = campaign
      AND sl.subscriber_id > after AND s.id > after
      AND s.status = 'enabled'
      AND (sl.status = 'confirmed' OR (sl.status = 'unconfirmed' AND l.opt_in = 'single'))
$$;
