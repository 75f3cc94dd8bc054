-- How a session's user authenticated (DESIGN §3.12): the RFC 8176 methods
-- and when. Access tokens carry them as amr and auth_time; a refresh keeps
-- them, and only a step-up inside the session raises them. Every session
-- open before this migration was a password login, at its creation. (amr
-- stays nullable, as Prisma declares every list; the service always sets it.)
ALTER TABLE "sessions" ADD COLUMN "amr" TEXT[] DEFAULT ARRAY['pwd']::TEXT[];
ALTER TABLE "sessions" ADD COLUMN "auth_time" TIMESTAMPTZ(3);
UPDATE "sessions" SET "auth_time" = "created_at";
ALTER TABLE "sessions" ALTER COLUMN "auth_time" SET NOT NULL;
ALTER TABLE "sessions" ALTER COLUMN "auth_time" SET DEFAULT CURRENT_TIMESTAMP;
