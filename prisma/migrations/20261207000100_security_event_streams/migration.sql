-- Security events for the platform's services (DESIGN §3.18): SSF 1.0 event
-- streams, and the Security Event Tokens (RFC 8417) waiting on each. A row of
-- security_events is written by a trigger in the transaction of the change it
-- announces (a session's revocation, a credential change), so no event is
-- lost for a committed change and none exists for a rolled-back one. The rows
-- are a delivery queue (src/shared/delivery-queue.ts): polled by the receiver
-- (RFC 8936) or pushed to it (RFC 8935) by a worker on any instance.

-- A receiver's event stream (SSF 1.0 §8.1.1).
CREATE TABLE "ssf_streams" (
    "id" UUID NOT NULL,
    -- The SETs' aud: the owning client's id, or a URN naming the stream.
    "audience" TEXT NOT NULL,
    -- The receiver that manages it: a client (client_credentials) or an admin
    -- (an API key with the events scope). No foreign keys: the triggers
    -- deliver only to streams whose owner may still receive, and retention
    -- deletes the streams of owners gone.
    "owner_client_id" TEXT,
    "owner_user_id" UUID,
    -- Event type URIs.
    "events_requested" TEXT[],
    "events_delivered" TEXT[],
    -- poll (RFC 8936) or push (RFC 8935).
    "delivery_method" TEXT NOT NULL,
    "endpoint_url" TEXT,
    -- The Authorization header a push carries (a secret of the receiver):
    -- AES-256-GCM under a key derived from SECRET_KEY, the stream id as associated data.
    "authorization_header_encrypted" BYTEA,
    "description" TEXT,
    -- enabled, paused or disabled (SSF 1.0 §8.1.2).
    "status" TEXT NOT NULL DEFAULT 'enabled',
    "status_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Written at most once a minute by the poll endpoint: retention deletes poll streams abandoned for days.
    "last_polled_at" TIMESTAMPTZ(3),
    "last_verification_at" TIMESTAMPTZ(3),
    CONSTRAINT "ssf_streams_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "ssf_streams_one_owner" CHECK (("owner_client_id" IS NULL) <> ("owner_user_id" IS NULL)),
    CONSTRAINT "ssf_streams_delivery_method" CHECK ("delivery_method" IN ('poll', 'push')),
    CONSTRAINT "ssf_streams_status" CHECK ("status" IN ('enabled', 'paused', 'disabled'))
);
CREATE INDEX "ssf_streams_owner_client_id_idx" ON "ssf_streams"("owner_client_id");
CREATE INDEX "ssf_streams_owner_user_id_idx" ON "ssf_streams"("owner_user_id");

-- One SET for one stream, its id the SET's jti: a row of the delivery queue.
CREATE TABLE "security_events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "stream_id" UUID NOT NULL,
    -- The event type URI.
    "event" TEXT NOT NULL,
    -- The SET's sub_id (RFC 9493, SSF 1.0 §3).
    "subject" JSONB NOT NULL,
    -- What the event's claims are made of when the SET is signed.
    "claims" JSONB NOT NULL DEFAULT '{}',
    -- The SET's txn: the writing transaction, shared by the SETs of one change.
    "txn" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    "dead_at" TIMESTAMPTZ(3),
    CONSTRAINT "security_events_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "security_events_stream_id_fkey" FOREIGN KEY ("stream_id") REFERENCES "ssf_streams"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "security_events_stream_id_next_attempt_at_idx" ON "security_events"("stream_id", "next_attempt_at");
CREATE INDEX "security_events_next_attempt_at_idx" ON "security_events"("next_attempt_at");
CREATE INDEX "security_events_delivered_at_idx" ON "security_events"("delivered_at");
CREATE INDEX "security_events_dead_at_idx" ON "security_events"("dead_at");
-- Claimed, then written once more with its outcome: room for HOT updates.
ALTER TABLE "security_events" SET (fillfactor = 70);

-- The streams an event of `event_type` goes to: enabled or paused (a paused
-- stream holds its events, SSF 1.0 §8.1.2), subscribed to the type, and
-- owned by a receiver that may still receive (a client still registered for
-- client_credentials, an admin still an admin and enabled).
CREATE FUNCTION "ssf_receiving_streams"("event_type" TEXT) RETURNS SETOF UUID LANGUAGE sql STABLE AS $$
  SELECT s.id FROM ssf_streams s
   WHERE s.status <> 'disabled'
     AND event_type = ANY (s.events_delivered)
     AND (s.owner_client_id IS NULL OR EXISTS (
           SELECT 1 FROM oauth_clients c WHERE c.id = s.owner_client_id AND 'client_credentials' = ANY (c.grant_types)))
     AND (s.owner_user_id IS NULL OR EXISTS (
           SELECT 1 FROM users u WHERE u.id = s.owner_user_id AND u.role = 'admin' AND NOT u.disabled))
$$;

-- CAEP session-revoked: the session by its sid, the user by its sub, as a
-- complex subject (SSF 1.0 §3.3); the reason stays as the service wrote it.
-- A new stream starts with the revocations of the last access-token lifetime
-- (src/features/security-events/streams.ts): it takes this advisory lock
-- exclusively, so a revocation is either committed before that backlog is
-- read, or writes its own row for the new stream (its INSERT's snapshot is
-- taken after the lock is granted, when the stream is committed).
CREATE FUNCTION "security_events_session_revoked"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(4242018);
  INSERT INTO security_events (stream_id, event, subject, claims, txn, created_at, next_attempt_at)
  SELECT r.id,
         'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
         jsonb_build_object(
           'format', 'complex',
           'session', jsonb_build_object('format', 'opaque', 'id', NEW.id::text),
           'user', jsonb_build_object('format', 'opaque', 'id', NEW.user_id::text)),
         jsonb_build_object('event_timestamp', floor(extract(epoch FROM NEW.revoked_at))::bigint, 'reason', NEW.revoked_reason),
         txid_current()::text, NEW.revoked_at, NEW.revoked_at
    FROM ssf_receiving_streams('https://schemas.openid.net/secevent/caep/event-type/session-revoked') AS r(id);
  RETURN NULL;
END
$$;

CREATE TRIGGER "sessions_security_events" AFTER UPDATE OF "revoked_at" ON "sessions"
  FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
  EXECUTE FUNCTION "security_events_session_revoked"();

-- CAEP credential-change: the user by its sub. Which audit types are
-- credential changes, and what CAEP calls each, is
-- src/features/security-events/credential-changes.ts (its test checks this list).
CREATE FUNCTION "security_events_credential_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO security_events (stream_id, event, subject, claims, txn, created_at, next_attempt_at)
  SELECT r.id,
         'https://schemas.openid.net/secevent/caep/event-type/credential-change',
         jsonb_build_object(
           'format', 'complex',
           'user', jsonb_build_object('format', 'opaque', 'id', NEW.user_id::text)),
         jsonb_build_object(
           'event_timestamp', floor(extract(epoch FROM NEW.at))::bigint,
           'audit_type', NEW.type,
           'initiating_entity', CASE WHEN NEW.actor_id IS NULL THEN 'system' WHEN NEW.actor_id = NEW.user_id THEN 'user' ELSE 'admin' END,
           'details', NEW.details),
         txid_current()::text, NEW.at, NEW.at
    FROM ssf_receiving_streams('https://schemas.openid.net/secevent/caep/event-type/credential-change') AS r(id);
  RETURN NULL;
END
$$;

CREATE TRIGGER "audit_events_security_events" AFTER INSERT ON "audit_events"
  FOR EACH ROW WHEN (NEW.user_id IS NOT NULL AND NEW.type IN (
    'password_changed', 'password_reset', 'totp_enabled', 'totp_removed', 'second_factors_reset',
    'passkey_registered', 'passkey_deleted', 'credentials_removed_by_link', 'api_key_created', 'api_key_revoked'))
  EXECUTE FUNCTION "security_events_credential_change"();
