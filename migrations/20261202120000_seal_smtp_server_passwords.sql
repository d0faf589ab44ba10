-- Relay passwords are stored sealed, as DKIM private keys are: ChaCha20-
-- Poly1305 under a key derived from dkim.secret, or from the secret generated
-- into app_secrets when that is not set (see compose::relay_passwords).
--
-- SQL cannot seal (the key may live only in the configuration), so this
-- migration adds the column and the application converts: at every start,
-- before anything reads relays, each row still holding a plain `password`
-- gets it sealed into `password_sealed`, and the plain one is emptied, in
-- one transaction (postino_db::smtp_servers::plain_passwords and
-- store_sealed_password). New and changed passwords are only ever written
-- sealed. The old column stays, empty, until a later migration drops it,
-- so that a binary from before this change fails to authenticate rather
-- than failing to start.
ALTER TABLE smtp_servers ADD COLUMN password_sealed bytea;

COMMENT ON COLUMN smtp_servers.password IS
    'Unused: emptied at start-up once sealed into password_sealed';
COMMENT ON COLUMN smtp_servers.password_sealed IS
    'The relay password sealed with ChaCha20-Poly1305 (see compose::relay_passwords); NULL for none. Never returned by the API nor logged';
