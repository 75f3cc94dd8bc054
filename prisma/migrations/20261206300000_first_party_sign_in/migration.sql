-- First-party sign-in through the authorization challenge endpoint (issue 27, DESIGN §3.16).
-- A login's pending second step remembers the flow's PKCE challenge; a code
-- issued without a browser session remembers the account it checked instead.
ALTER TABLE "mfa_tokens" ADD COLUMN "code_challenge" TEXT;
ALTER TABLE "authorization_codes" ALTER COLUMN "browser_session_id" DROP NOT NULL;
ALTER TABLE "authorization_codes" ADD COLUMN "password_hash_mac" BYTEA;
ALTER TABLE "authorization_codes" ADD COLUMN "passkey_id" UUID;

-- A code is written twice (issued, then spent): room on its page lets the
-- second write be a HOT update, which touches none of the table's four
-- indexes (nothing indexed changes when a code is spent).
ALTER TABLE "authorization_codes" SET (fillfactor = 50);
