import Type, { type Static } from 'typebox'

/** GET /health: the process is up. Answered from memory, without I/O. */
export const Health = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String({ description: "the service's version (package.json)" }),
  uptimeSeconds: Type.Number({ minimum: 0, description: 'seconds since the process started' }),
})
export type Health = Static<typeof Health>

const LatencyMs = Type.Number({ minimum: 0, description: 'the round trip of the check, in milliseconds' })

/**
 * GET /ready: the database answers (else 503), and what the instance runs
 * on. Names and states only: no URL, host, user or key material.
 */
export const Readiness = Type.Object({
  status: Type.Literal('ok'),
  database: Type.Object({
    latencyMs: LatencyMs,
    migration: Type.Union([Type.String(), Type.Null()], {
      description: 'the last migration applied (by name, from _prisma_migrations); null: none',
    }),
    appliedMigrations: Type.Integer({ minimum: 0 }),
  }),
  signingKeyId: Type.Union([Type.String(), Type.Null()], {
    description: 'the kid of the key that signs tokens now (a JWK thumbprint, public); null: none can sign',
  }),
  redis: Type.Object({
    status: Type.Union([Type.Literal('not_configured'), Type.Literal('up'), Type.Literal('down')], {
      description: 'REDIS_URL unset: not_configured; else whether it answers a PING (while it is down, the rate limits it holds are not enforced)',
    }),
    latencyMs: Type.Optional(LatencyMs),
  }),
  smtp: Type.Object({
    status: Type.Union([Type.Literal('not_configured'), Type.Literal('configured')], {
      description: 'SMTP_URL unset: not_configured, and mail stays in the outbox',
    }),
    sent: Type.Optional(Type.Integer({ minimum: 0, description: 'messages this instance delivered since it started' })),
    failed: Type.Optional(Type.Integer({ minimum: 0, description: 'attempts that failed (retried later) since it started' })),
    dead: Type.Optional(Type.Integer({ minimum: 0, description: 'messages given up on since it started' })),
  }),
})
export type Readiness = Static<typeof Readiness>
