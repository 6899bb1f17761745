-- The OpenID Connect nonce of a pending re-authorization is sealed, SQLite dialect. Migrations only move
-- forward: never edit an applied file, add a new one.
--
-- Until now the nonce was a plaintext column. From this migration on it is sealed with the pending
-- record's other secrets (PKCE verifier, certificate) inside sealed_secrets, under the state hash.
-- A record written before the upgrade keeps its nonce in legacy_nonce until the store opens: opening it
-- seals the nonce into sealed_secrets and clears legacy_nonce (SQL cannot seal), so no re-authorization
-- in flight is lost. New records never fill legacy_nonce.

ALTER TABLE pending_authorizations ADD COLUMN legacy_nonce TEXT;
UPDATE pending_authorizations SET legacy_nonce = nonce;
ALTER TABLE pending_authorizations DROP COLUMN nonce;
