-- Second factors (DESIGN §3.12): TOTP authenticators (secret encrypted,
-- bound to the user), recovery codes (one keyed hash each) and the tokens of
-- a login's second step (keyed hash, single use, short-lived).
CREATE TABLE "totp_factors" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "secret_encrypted" BYTEA NOT NULL,
    "last_used_step" INTEGER NOT NULL DEFAULT 0,
    "confirmed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "totp_factors_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "totp_factors_user_id_key" ON "totp_factors"("user_id");

ALTER TABLE "totp_factors" ADD CONSTRAINT "totp_factors_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "recovery_codes" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "code_hash" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "recovery_codes_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "recovery_codes_code_hash_key" ON "recovery_codes"("code_hash");
CREATE INDEX "recovery_codes_user_id_idx" ON "recovery_codes"("user_id");

ALTER TABLE "recovery_codes" ADD CONSTRAINT "recovery_codes_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "mfa_tokens" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "token_hash" BYTEA NOT NULL,
    "client_id" TEXT NOT NULL,
    "transport" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "role" "role" NOT NULL,
    "password_hash_mac" BYTEA NOT NULL,
    "failed_attempts" INTEGER NOT NULL DEFAULT 0,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "mfa_tokens_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "mfa_tokens_token_hash_key" ON "mfa_tokens"("token_hash");
CREATE INDEX "mfa_tokens_user_id_idx" ON "mfa_tokens"("user_id");
CREATE INDEX "mfa_tokens_expires_at_idx" ON "mfa_tokens"("expires_at");
CREATE INDEX "mfa_tokens_used_at_idx" ON "mfa_tokens"("used_at");

ALTER TABLE "mfa_tokens" ADD CONSTRAINT "mfa_tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
