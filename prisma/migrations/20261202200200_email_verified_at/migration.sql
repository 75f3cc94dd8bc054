-- When the owner of a user's address proved it by opening an emailed link
-- (DESIGN §3.11). Existing users start unverified: with
-- REQUIRE_EMAIL_VERIFICATION they verify by a password reset or by the
-- resend endpoint from a live session.
ALTER TABLE "users" ADD COLUMN "email_verified_at" TIMESTAMPTZ(3);
