-- API tokens belong to the dashboard user who made them and carry a scope
-- that never exceeds that user's role (checked on every request against the
-- role at that moment). A token with no owner is an installation token,
-- made by the operator with `postino token create` or by `postino demo`.

-- Tokens made before owners were recorded all have created_by NULL, and
-- tokens made through the API were never given one: they stay installation
-- tokens with the admin scope they effectively had. Review them on the
-- tokens page after upgrading.
ALTER TABLE api_tokens
    ADD COLUMN scope text NOT NULL DEFAULT 'admin'
        CHECK (scope IN ('read', 'subscribers', 'campaigns', 'write', 'admin'));
-- Postino always names the scope; a row inserted by hand gets the least.
ALTER TABLE api_tokens ALTER COLUMN scope SET DEFAULT 'read';

-- Deleting a user deletes their tokens. The old ON DELETE SET NULL turned a
-- deleted user's tokens into ownerless, that is installation, tokens: the
-- opposite of what deleting someone means.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_created_by_fkey;
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_created_by_fkey
        FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE CASCADE;

-- A user's tokens, for narrowing them when the user's role changes.
CREATE INDEX api_tokens_created_by ON api_tokens (created_by) WHERE created_by IS NOT NULL;
