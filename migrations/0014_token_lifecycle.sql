-- 0014_token_lifecycle.sql - tokens with a lifecycle (issue 15).
--
-- A token may carry an end of validity (`berichtd token create
-- --geldig-tot`); from then on it is refused with 401 like a revoked one
-- (`berichtd token revoke ID` sets revoked_at, which 0001 already has).
-- The daemon's auth cache never keeps a token past expires_at, and at most
-- [security] token_cache_ttl (30 s) past its revocation.
--
-- last_used_at is written by the auth lookup, which runs only when a
-- token's cache entry is (re)filled, and then only when the stored value is
-- older than a minute: no write per request, at most one a minute a token.
-- `berichtd token list` shows it, so an operator sees whether the old token
-- of a rotation is still in use before revoking it.

ALTER TABLE api_tokens
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz;
