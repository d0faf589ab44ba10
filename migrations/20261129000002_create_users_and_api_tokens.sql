-- Dashboard users and the API tokens integrations authenticate with.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid          uuid NOT NULL UNIQUE,
    email         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    -- PHC string (argon2id); the password itself is never stored.
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid         uuid NOT NULL UNIQUE,
    name         text NOT NULL,
    -- SHA-256 of the token. Tokens carry 256 random bits, so a fast hash is
    -- enough (no dictionary to attack) and lets every request look up by
    -- equality on this index.
    token_hash   bytea NOT NULL UNIQUE,
    -- The first characters of the token, shown so people can recognise it.
    prefix       text NOT NULL,
    created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
