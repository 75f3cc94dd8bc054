-- Webhooks (issue 28, DESIGN §3.18): every audit event is also an event for
-- the endpoints subscribed to its type. The fan-out is a trigger on
-- audit_events, so a delivery row is written in the transaction that writes
-- the audit row, whatever statement wrote it: no event is lost for a
-- committed change and none is sent for a rolled-back one.

CREATE TABLE "webhook_endpoints" (
    "id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    -- Audit event types, or '*' for every one.
    "events" TEXT[],
    -- The signing secret (whsec_…, needed in clear to sign), AES-256-GCM
    -- under a key derived from SECRET_KEY with the row id as associated data.
    "secret_encrypted" BYTEA NOT NULL,
    -- After a rotation the old secret also signs, until it expires, so
    -- receivers can switch without dropping deliveries.
    "previous_secret_encrypted" BYTEA,
    "previous_secret_expires_at" TIMESTAMPTZ(3),
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabled_reason" TEXT,
    -- The first failed attempt since the last success (NULL when healthy).
    "failing_since" TIMESTAMPTZ(3),
    "created_by" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_endpoints_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- One event for one endpoint: a row of the delivery queue (src/shared/delivery-queue.ts,
-- the mechanism the email outbox uses too).
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "endpoint_id" UUID NOT NULL,
    -- audit_events.id; no foreign key: retention deletes old events on its own schedule.
    "event_id" BIGINT NOT NULL,
    -- The body as first sent (its exact text), so every retry carries the same message.
    "body" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "last_status" INTEGER,
    "last_latency_ms" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    "dead_at" TIMESTAMPTZ(3),
    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_deliveries_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "webhook_deliveries_next_attempt_at_idx" ON "webhook_deliveries"("next_attempt_at");
CREATE INDEX "webhook_deliveries_endpoint_id_created_at_idx" ON "webhook_deliveries"("endpoint_id", "created_at");
CREATE INDEX "webhook_deliveries_created_at_idx" ON "webhook_deliveries"("created_at");
CREATE INDEX "webhook_deliveries_delivered_at_idx" ON "webhook_deliveries"("delivered_at");
CREATE INDEX "webhook_deliveries_dead_at_idx" ON "webhook_deliveries"("dead_at");
-- Claimed, then written once more with its outcome: room for HOT updates.
ALTER TABLE "webhook_deliveries" SET (fillfactor = 70);

-- Each attempt: what the receiver answered and how long it took.
CREATE TABLE "webhook_attempts" (
    "id" BIGSERIAL NOT NULL,
    "delivery_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "status" INTEGER,
    "latency_ms" INTEGER NOT NULL,
    "error" TEXT,
    CONSTRAINT "webhook_attempts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_attempts_delivery_id_fkey" FOREIGN KEY ("delivery_id") REFERENCES "webhook_deliveries"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "webhook_attempts_delivery_id_idx" ON "webhook_attempts"("delivery_id");

CREATE FUNCTION "webhook_fan_out"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, next_attempt_at)
  SELECT e.id, NEW.id, NEW.at, NEW.at
    FROM webhook_endpoints e
   WHERE e.enabled AND (NEW.type = ANY (e.events) OR '*' = ANY (e.events));
  RETURN NULL;
END
$$;

CREATE TRIGGER "audit_events_webhook_fan_out" AFTER INSERT ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION "webhook_fan_out"();
