-- A user's auth_changed_at is set only when their role or disabled flag
-- changes. It defaulted to the creation time, which made every new user look
-- "changed" to the revocation sync for the first minutes of their life.
ALTER TABLE "users" ALTER COLUMN "auth_changed_at" DROP NOT NULL,
                    ALTER COLUMN "auth_changed_at" DROP DEFAULT;

UPDATE "users" SET "auth_changed_at" = NULL WHERE "auth_changed_at" = "created_at";
