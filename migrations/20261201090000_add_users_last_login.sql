-- When each user last signed in, for the admins' list of users.
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
