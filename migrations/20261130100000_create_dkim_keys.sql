-- DKIM keys, one or more per signing domain (one per selector). The sender
-- signs a message with the newest enabled key of its From domain, or of the
-- closest parent domain that has one.

CREATE TABLE dkim_keys (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                  uuid NOT NULL UNIQUE,
    -- Lower-case ASCII (IDNA) form, as From addresses are stored.
    domain                text NOT NULL,
    selector              text NOT NULL,
    algorithm             text NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    -- PKCS#8 sealed with ChaCha20-Poly1305 under dkim.secret, or under a
    -- secret generated into app_secrets when that is not set. Never
    -- returned by the API nor logged.
    private_key_encrypted bytea NOT NULL,
    -- What the DNS record publishes (SubjectPublicKeyInfo for RSA, the raw
    -- key for Ed25519), kept so the record can be shown without the secret.
    public_key            bytea NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dkim_keys_domain_selector_key UNIQUE (domain, selector)
);
