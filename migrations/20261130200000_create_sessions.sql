-- Dashboard sessions, and the failed-login count behind the lockout.

CREATE TABLE sessions (
    -- SHA-256 of the cookie's value. The value carries 256 random bits, so a
    -- fast hash is enough, and a leaked table cannot be replayed as cookies.
    id_hash     bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The token every form and htmx request of this session must echo. Not
    -- a credential on its own: it is useless without the session cookie.
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- Logout everywhere (by user) and the sweep of expired sessions.
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Consecutive failed logins since the last success, and the lock they set.
ALTER TABLE users
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0,
    ADD COLUMN locked_until  timestamptz;
