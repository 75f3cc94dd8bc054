-- Account-takeover hardening (issue 24).
-- An address-change link remembers the password it was asked with (a keyed
-- hash of the password hash), so its confirmation is refused once the
-- password changed; a credential-removal link names what it removes.
ALTER TYPE "account_token_purpose" ADD VALUE 'credential_removal';
ALTER TABLE "account_tokens" ADD COLUMN "password_hash_mac" BYTEA;
ALTER TABLE "account_tokens" ADD COLUMN "details" JSONB;

-- A passkey as the second step of a password login gets a challenge bound to
-- the user, of its own purpose.
ALTER TYPE "webauthn_challenge_purpose" ADD VALUE 'second_factor';

-- The passkey a session was signed in with: deleting the passkey ends it.
ALTER TABLE "sessions" ADD COLUMN "passkey_id" UUID;
