-- A session's refresh-token family moves into its own row (issue #13,
-- DESIGN §3.13): the live token's generation and keyed hash, and the last
-- retirement times the grace window needs. Rotation becomes one UPDATE of one
-- row and the table holds one row per session, not one per refresh.

ALTER TABLE "sessions"
  ADD COLUMN "generation" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "refresh_token_hash" BYTEA,
  ADD COLUMN "recent_retirements" TIMESTAMPTZ(3)[] DEFAULT ARRAY[]::TIMESTAMPTZ(3)[];

-- Tokens issued before this layout cannot be read by it: their sessions end
-- here, cleanly (revoked, so that every instance also refuses their access
-- tokens; the users sign in again). Their refresh tokens get invalid_grant.
UPDATE "sessions" SET "revoked_at" = now(), "revoked_reason" = 'storage_upgrade' WHERE "revoked_at" IS NULL;

DROP TABLE "refresh_tokens";

-- Room in each page for the new version of a row, so a rotation is a HOT
-- update (no index entry written) as long as it changes no indexed column.
ALTER TABLE "sessions" SET (fillfactor = 80);
