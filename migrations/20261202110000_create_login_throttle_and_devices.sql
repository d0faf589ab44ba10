-- Sign-in throttling per typed address, replacing the hard account lock
-- (users.failed_logins and users.locked_until are no longer used).
--
-- Keyed by what was typed, not by account: an address nobody has is counted
-- and slowed down exactly like a real one, so neither the answers nor the
-- work done tell which addresses have accounts. The key is the SHA-256 of
-- the trimmed, lower-cased address, so made-up or mistyped addresses are not
-- kept in clear.
CREATE TABLE login_throttle (
    email_key   bytea PRIMARY KEY,
    -- Failed (or not yet finished) sign-ins in a row; a success deletes the row.
    failures    integer NOT NULL DEFAULT 0,
    -- No sign-in for this address is checked before then.
    next_try_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The sweep of rows nobody has touched for a day.
CREATE INDEX login_throttle_updated_at ON login_throttle (updated_at);

-- Browsers that signed in to an account before. Their cookie lets the right
-- password through while the address is throttled, so an attacker failing
-- on purpose cannot keep the owner out of their own account.
CREATE TABLE login_devices (
    -- SHA-256 of the cookie's value (256 random bits).
    id_hash    bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

CREATE INDEX login_devices_user ON login_devices (user_id);
CREATE INDEX login_devices_expires_at ON login_devices (expires_at);
