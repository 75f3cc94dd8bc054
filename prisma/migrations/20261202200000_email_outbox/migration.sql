-- The transactional email outbox (DESIGN §3.11). Rows are written in the
-- transaction of the change they announce and delivered by a worker on any
-- instance. next_attempt_at is NULL once a row is sent or dead, so the claim
-- query's index holds only pending rows; sent_at and dead_at are indexed for
-- the retention job's batch deletes.
CREATE TABLE "email_outbox" (
    "id" UUID NOT NULL,
    "recipient" TEXT NOT NULL,
    "template" TEXT NOT NULL,
    "data" JSONB NOT NULL DEFAULT '{}',
    "secret_encrypted" BYTEA,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),
    "dead_at" TIMESTAMPTZ(3),

    CONSTRAINT "email_outbox_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "email_outbox_next_attempt_at_idx" ON "email_outbox"("next_attempt_at");
CREATE INDEX "email_outbox_sent_at_idx" ON "email_outbox"("sent_at");
CREATE INDEX "email_outbox_dead_at_idx" ON "email_outbox"("dead_at");
CREATE INDEX "email_outbox_created_at_idx" ON "email_outbox"("created_at");
