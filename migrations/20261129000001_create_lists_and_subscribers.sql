-- Lists, subscribers and the memberships between them.
--
-- Internal keys are bigint identities (cheap joins, compact indexes on tables
-- of millions of rows); every row also has a random UUID, the only id that
-- leaves the system, so ids cannot be enumerated from the API.

CREATE TABLE lists (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid        uuid NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    opt_in      text NOT NULL DEFAULT 'single' CHECK (opt_in IN ('single', 'double')),
    visibility  text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
    tags        text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscribers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid        uuid NOT NULL UNIQUE,
    -- Validated and normalised by the domain crate before it gets here.
    email       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    status      text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'blocklisted')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One subscriber per address whatever its case: receivers fold case, and a
-- second row would mean a second copy of every campaign.
CREATE UNIQUE INDEX subscribers_email_key ON subscribers (lower(email));

-- Substring search on e-mail ("contains") without a sequential scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX subscribers_email_trgm ON subscribers USING gin (lower(email) gin_trgm_ops);

-- Attribute equality filters use containment (attributes @> '{"k": v}').
CREATE INDEX subscribers_attributes ON subscribers USING gin (attributes jsonb_path_ops);

CREATE INDEX subscribers_created_at ON subscribers (created_at, id);

CREATE TABLE subscriber_lists (
    list_id       bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status        text NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'unsubscribed')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- list first: "members of list L in id order" is the keyset query behind
    -- list filters and, later, campaign enqueue.
    PRIMARY KEY (list_id, subscriber_id)
);

CREATE INDEX subscriber_lists_subscriber ON subscriber_lists (subscriber_id);
