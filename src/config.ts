import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'
import { ADMIN_CLIENT_ID, firstPartyClients, type ClientConfig } from './features/tokens/clients.js'

/**
 * The service's configuration, read from environment variables (DESIGN §3.10).
 * The TypeBox schema below is the one description of every variable: its
 * type, bounds and default. `.env.example` and the README document them.
 */
const Seconds = (defaultValue: number, minimum = 1) =>
  Type.Integer({ minimum, maximum: 10 * 365 * 24 * 3600, default: defaultValue })

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DATA_DIR: Type.String({ minLength: 1, default: './.data' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  ISSUER: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' })),
  ACCESS_TOKEN_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  CORS_ORIGINS: Type.String({ default: '' }),
  COOKIE_SECURE: Type.Boolean({ default: true }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  ACCESS_TOKEN_TTL_SECONDS: Seconds(600),
  ADMIN_ACCESS_TOKEN_TTL_SECONDS: Seconds(300),
  REFRESH_IDLE_TTL_SECONDS: Seconds(7 * 24 * 3600),
  REFRESH_ABSOLUTE_TTL_SECONDS: Seconds(30 * 24 * 3600),
  ADMIN_REFRESH_IDLE_TTL_SECONDS: Seconds(30 * 60),
  ADMIN_REFRESH_ABSOLUTE_TTL_SECONDS: Seconds(12 * 3600),
  REFRESH_GRACE_SECONDS: Seconds(10, 0),
  SCOPES: Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+( [\\x21\\x23-\\x5B\\x5D-\\x7E]+)*$', default: 'profile' }),
  DEFAULT_CLIENT_ID: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'mobile' }),
  JWKS_MAX_AGE_SECONDS: Seconds(300),
  KEY_PUBLISH_LEAD_SECONDS: Seconds(900),
  BCRYPT_COST: Type.Integer({ minimum: 4, maximum: 16, default: 12 }),
  SECRET_KEY: Type.Optional(Type.String({ minLength: 32 })),
  AUTH_RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 0, maximum: 100000, default: 10 }),
  API_KEY_LIMIT_PER_USER: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1000 }),
  PASSWORD_QUEUE_MAX_WAIT_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 2000 }),
  SESSION_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 0, maximum: 36500, default: 400 }),
  RETENTION_INTERVAL_SECONDS: Seconds(3600, 0),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  // No control characters: both go into message headers.
  EMAIL_FROM: Type.Optional(Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\x00-\\x1f\\x7f]+$' })),
  PRODUCT_NAME: Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f\\x7f]+$', default: 'token-auth' }),
  EMAIL_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 8 }),
  EMAIL_RETRY_BASE_SECONDS: Seconds(30),
  EMAIL_POLL_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
  PASSWORD_RESET_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  EMAIL_VERIFY_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  CREDENTIAL_REMOVAL_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  SECURITY_PAGE_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  SIGN_UP_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  PASSWORD_RESET_TTL_SECONDS: Seconds(1800, 60),
  EMAIL_VERIFY_TTL_SECONDS: Seconds(24 * 3600, 60),
  REQUIRE_EMAIL_VERIFICATION: Type.Boolean({ default: false }),
  EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: Type.Integer({ minimum: 0, maximum: 100000, default: 5 }),
  EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: Type.Integer({ minimum: 0, maximum: 100000, default: 30 }),
  EMAIL_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 7 }),
  WEBHOOK_RETRY_BASE_SECONDS: Seconds(5),
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 15 }),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: Type.Boolean({ default: false }),
  WEBHOOK_DISABLE_AFTER_DAYS: Type.Integer({ minimum: 1, maximum: 365, default: 5 }),
  WEBHOOK_POLL_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 600_000, default: 500 }),
  // Unset: true in production, false elsewhere.
  REQUIRE_MFA_FOR_ADMINS: Type.Optional(Type.Boolean()),
  PASSWORD_GRANT: Type.Union([Type.Literal('enabled'), Type.Literal('disabled')], {
    default: 'disabled',
    description: 'the legacy password grant (and the mfa-otp and passkey grants that finish it); OAuth 2.1 removes it',
  }),
  RECENT_AUTH_MAX_AGE_SECONDS: Seconds(900, 30),
  OTP_RATE_LIMIT_PER_USER: Type.Integer({ minimum: 0, maximum: 100000, default: 10 }),
  WEBAUTHN_RP_ID: Type.Optional(Type.String({ pattern: '^[a-z0-9.-]{1,253}$' })),
  WEBAUTHN_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  // Prometheus metrics on a listener of their own (unset: none); never on PORT.
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  // OpenTelemetry traces to this OTLP/HTTP collector (unset: none, and no OpenTelemetry module is loaded).
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' }
  ),
})
export type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  port: number
  host: string
  /** Unset: the embedded database in `dataDir`. */
  databaseUrl: string | undefined
  databasePoolMax: number
  dataDir: string
  redisUrl: string | undefined
  issuer: string
  audience: string
  corsOrigins: string[]
  cookieSecure: boolean
  trustProxy: boolean
  clients: Record<string, ClientConfig>
  /** Scopes access tokens and API keys may carry (SCOPES). */
  scopes: string[]
  defaultClientId: string
  /** The lifetimes an admin's tokens get whatever client they use. */
  adminClientId: string
  refreshGraceSeconds: number
  jwksMaxAgeSeconds: number
  keyPublishLeadSeconds: number
  bcryptCost: number
  /** Unset only with the embedded database outside production: generated into dataDir. */
  secretKey: string | undefined
  authRateLimitPerMinute: number
  /** Live (unrevoked, unexpired) API keys a user may hold at once. */
  apiKeyLimitPerUser: number
  /** Event-loop delay past which requests get 503 (load shedding); 0 turns it off. */
  maxEventLoopDelayMs: number
  /** Expected wait for a bcrypt slot past which password checks get 503 at once; 0: unbounded. */
  passwordQueueMaxWaitMs: number
  /** Days a session (and an API key) is kept after it expired or was revoked. */
  sessionRetentionDays: number
  /** Days audit events are kept; 0 keeps them for ever. */
  auditRetentionDays: number
  /** Seconds between this instance's retention passes; 0: none (another instance, or a scheduler, runs them). */
  retentionIntervalSeconds: number
  /** GET /metrics on its own listener (METRICS_PORT, METRICS_HOST; default HOST); port undefined: no listener. */
  metrics: { port: number | undefined; host: string }
  /** OTEL_EXPORTER_OTLP_ENDPOINT: traces are exported there; undefined: no tracing. */
  otlpEndpoint: string | undefined
  logLevel: string
  /**
   * Whether the token endpoint serves the legacy password grant and the
   * grants that finish its login (mfa-otp, passkey): PASSWORD_GRANT, off
   * unless enabled (DESIGN §3.4).
   */
  passwordGrant: boolean
  /** The hosted sign-in pages' links (features/oauth). */
  oauth: { signUpUrl: string | undefined; forgotPasswordUrl: string }
  email: EmailConfig
  webhooks: WebhookConfig
  mfa: MfaConfig
  webauthn: WebAuthnConfig
}

/** Second factors and step-up (DESIGN §3.12). */
export interface MfaConfig {
  /** An admin whose token asserts no second factor may only enrol one (REQUIRE_MFA_FOR_ADMINS). */
  requireForAdmins: boolean
  /** How old an authentication the service's sensitive routes still accept, in seconds. */
  recentAuthMaxAgeSeconds: number
  /** The issuer name authenticator apps show beside a TOTP account (PRODUCT_NAME). */
  totpIssuer: string
  /** One-time-code attempts (TOTP or recovery code) per user per 15 minutes (OTP_RATE_LIMIT_PER_USER); 0 turns the limit off. */
  otpAttemptsPerUser: number
}

/** Passkeys: the relying party, from configuration only, never from a request. */
export interface WebAuthnConfig {
  /** The registrable domain credentials are scoped to (WEBAUTHN_RP_ID; default ISSUER's host). */
  rpId: string
  rpName: string
  /** Origins whose assertions are accepted (WEBAUTHN_ORIGINS; default ISSUER's origin and CORS_ORIGINS). */
  origins: string[]
}

/** Outgoing email (DESIGN §3.11). */
export interface EmailConfig {
  /** Unset: nothing is sent; mail stays in the outbox (the development mailbox). */
  smtpUrl: string | undefined
  from: string
  productName: string
  /** Failed attempts after which a message is parked as dead. */
  maxAttempts: number
  /** The first retry waits this long; each further one twice as long (capped at an hour). */
  retryBaseSeconds: number
  /** How often each instance looks for messages due. */
  pollIntervalMs: number
  /** The pages of the dashboard (or the product's own SPA) that links point at; the secret goes in the fragment. */
  passwordResetUrl: string
  emailVerifyUrl: string
  /** The page a password-change notice's one-click link opens: it removes the passkeys and API keys the notice lists. */
  credentialRemovalUrl: string
  /** Where a user reviews their passkeys, factors and keys; named by every "new way into your account" notice. */
  securityPageUrl: string
  /** Admins may read the rendered messages (with their links): only without SMTP and outside production. */
  devMailbox: boolean
  passwordResetTtlSeconds: number
  /** How long a verification or address-change link works. */
  emailVerifyTtlSeconds: number
  /** The password grant refuses accounts whose address is unverified (email_not_verified). */
  requireVerification: boolean
  /** Requests that send email, per address and per client IP, per hour; 0 turns a limit off. */
  rateLimitPerAddressPerHour: number
  rateLimitPerIpPerHour: number
  /** Days sent and dead messages, and used or expired link secrets, are kept. */
  retentionDays: number
}

/** Webhooks (DESIGN §3.18). */
export interface WebhookConfig {
  /** The first retry waits this long; each further one twice as long (capped at an hour). */
  retryBaseSeconds: number
  /** Attempts after which a delivery is dead. */
  maxAttempts: number
  /** Endpoints on loopback, private, link-local or metadata addresses are accepted (development, tests). */
  allowPrivateNetworks: boolean
  /** An endpoint failing this many days without a success is disabled and its owner told. */
  disableAfterDays: number
  /** How often each instance looks for deliveries due. */
  pollIntervalMs: number
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** What `loadEnvFile` did, for the start log: the file and variable names, never a value. */
export type EnvFileOutcome =
  | { read: true; path: string; applied: string[]; overridden: string[] }
  | { read: false; path: string; reason: 'absent' | 'NODE_ENV=test' }

/**
 * The `.env` of the working directory (where `npm start`, `npm run dev` and
 * the CLIs run: the package's folder), into `env`: a variable the real
 * environment sets, even to an empty value, keeps its value. The file is
 * optional. Only the entry points (server.ts, src/cli/*) call this, before
 * loadConfig; loadConfig itself never reads a file, so tests that build the
 * app from loadConfig({...}) see only what they pass. A process started with
 * NODE_ENV=test in its real environment (the test suite's spawned servers and
 * CLIs) skips the file too, so that a developer's .env never leaks into a
 * test run. Node's own parser (util.parseEnv: the syntax of `node
 * --env-file`) rather than process.loadEnvFile, so that the caller learns which
 * names came from the file and which the environment overrode.
 */
export function loadEnvFile (options: { dir?: string; env?: NodeJS.ProcessEnv } = {}): EnvFileOutcome {
  const env = options.env ?? process.env
  const path = resolve(options.dir ?? process.cwd(), '.env')
  if (env.NODE_ENV === 'test') return { read: false, path, reason: 'NODE_ENV=test' }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { read: false, path, reason: 'absent' }
    throw error
  }
  const applied: string[] = []
  const overridden: string[] = []
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (value === undefined) continue
    if (Object.hasOwn(env, name)) {
      overridden.push(name)
    } else {
      env[name] = value
      applied.push(name)
    }
  }
  return { read: true, path, applied: applied.sort(), overridden: overridden.sort() }
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, 1: true, yes: true, false: false, 0: false, no: false }

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig (source: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    const value = source[name]
    if (value !== undefined && value !== '') raw[name] = value
  }
  const problems: string[] = []
  // Booleans are converted here rather than by Value.Convert, which accepts any
  // string as true: a typo in COOKIE_SECURE must not pass silently.
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    if ((schema as { type?: string }).type !== 'boolean' || raw[name] === undefined) continue
    const word = String(raw[name]).toLowerCase()
    if (word in BOOLEAN_WORDS) raw[name] = BOOLEAN_WORDS[word]
    else problems.push(`${name}: must be true or false, got "${String(raw[name])}"`)
  }
  // Integers are checked here too: Value.Convert truncates "12.9" to 12 and reads "0x10" as 16.
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    if ((schema as { type?: string }).type !== 'integer' || raw[name] === undefined) continue
    if (!/^-?\d+$/.test(String(raw[name]).trim())) problems.push(`${name}: must be a whole number, got "${String(raw[name])}"`)
  }
  const converted = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw)) as Record<string, unknown>
  for (const error of Value.Errors(EnvSchema, converted)) {
    if (error.keyword === 'anyOf' || error.keyword === 'const') continue
    const name = error.instancePath.replace(/^\//, '')
    if (problems.some((p) => p.startsWith(`${name}:`))) continue
    problems.push(`${name}: ${error.message}, got "${String(source[name])}"`)
  }
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const anyOf = (schema as { anyOf?: { const: string }[] }).anyOf
    if (!anyOf || converted[name] === undefined) continue
    const allowed = anyOf.map((s) => s.const)
    if (!allowed.includes(converted[name] as string)) {
      problems.push(`${name}: must be one of ${allowed.join(', ')}, got "${String(source[name])}"`)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  const env = converted as Env
  return fromEnv(env)
}

function fromEnv (env: Env): Config {
  const problems: string[] = []
  if (env.REFRESH_ABSOLUTE_TTL_SECONDS < env.REFRESH_IDLE_TTL_SECONDS) {
    problems.push('REFRESH_ABSOLUTE_TTL_SECONDS: must not be shorter than REFRESH_IDLE_TTL_SECONDS')
  }
  if (env.ADMIN_REFRESH_ABSOLUTE_TTL_SECONDS < env.ADMIN_REFRESH_IDLE_TTL_SECONDS) {
    problems.push('ADMIN_REFRESH_ABSOLUTE_TTL_SECONDS: must not be shorter than ADMIN_REFRESH_IDLE_TTL_SECONDS')
  }
  if (env.KEY_PUBLISH_LEAD_SECONDS <= env.JWKS_MAX_AGE_SECONDS) {
    // A cache must never hold a key set that lacks the key now signing (§3.1).
    problems.push('KEY_PUBLISH_LEAD_SECONDS: must be longer than JWKS_MAX_AGE_SECONDS')
  }
  const corsOrigins = env.CORS_ORIGINS.split(',')
    .map((origin) => origin.trim())
    .filter(Boolean)
  for (const origin of corsOrigins) {
    if (!/^https?:\/\/[^\s/]+$/.test(origin)) {
      problems.push(`CORS_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`)
    }
  }
  if (!env.SECRET_KEY && (env.DATABASE_URL || env.NODE_ENV === 'production')) {
    problems.push(
      'SECRET_KEY: required with DATABASE_URL or NODE_ENV=production (at least 32 characters, e.g. `openssl rand -base64 48`)'
    )
  }
  const scopes = env.SCOPES.split(' ')
  const issuerHost = env.ISSUER ? new URL(env.ISSUER).hostname : 'localhost'
  if (!env.COOKIE_SECURE && (env.NODE_ENV === 'production' || !['localhost', '127.0.0.1', '[::1]'].includes(issuerHost))) {
    problems.push('COOKIE_SECURE: may be false only for http://localhost development (ISSUER on localhost, NODE_ENV not production)')
  }
  const clients = firstPartyClients({
    scopes,
    user: {
      accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshIdleTtlSeconds: env.REFRESH_IDLE_TTL_SECONDS,
      refreshAbsoluteTtlSeconds: env.REFRESH_ABSOLUTE_TTL_SECONDS,
    },
    admin: {
      accessTokenTtlSeconds: env.ADMIN_ACCESS_TOKEN_TTL_SECONDS,
      refreshIdleTtlSeconds: env.ADMIN_REFRESH_IDLE_TTL_SECONDS,
      refreshAbsoluteTtlSeconds: env.ADMIN_REFRESH_ABSOLUTE_TTL_SECONDS,
    },
  })
  if (!clients[env.DEFAULT_CLIENT_ID]) {
    problems.push(`DEFAULT_CLIENT_ID: "${env.DEFAULT_CLIENT_ID}" is not a configured client (${Object.keys(clients).join(', ')})`)
  }
  const webauthnOrigins = env.WEBAUTHN_ORIGINS?.split(',').map((origin) => origin.trim()).filter(Boolean)
  for (const origin of webauthnOrigins ?? []) {
    if (!/^https?:\/\/[^\s/]+$/.test(origin)) problems.push(`WEBAUTHN_ORIGINS: "${origin}" is not an origin (scheme://host[:port], no path)`)
  }
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT !== 0 && env.METRICS_PORT === env.PORT) {
    problems.push(`METRICS_PORT: must differ from PORT (${env.PORT}): metrics are never served on the public port`)
  }
  if (problems.length > 0) throw new ConfigError(problems)

  const issuer = (env.ISSUER ?? `http://localhost:${env.PORT}`).replace(/\/$/, '')
  return {
    env: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    dataDir: env.DATA_DIR,
    redisUrl: env.REDIS_URL,
    issuer,
    audience: env.ACCESS_TOKEN_AUDIENCE ?? issuer,
    corsOrigins,
    cookieSecure: env.COOKIE_SECURE,
    trustProxy: env.TRUST_PROXY,
    clients,
    scopes,
    defaultClientId: env.DEFAULT_CLIENT_ID,
    adminClientId: ADMIN_CLIENT_ID,
    refreshGraceSeconds: env.REFRESH_GRACE_SECONDS,
    jwksMaxAgeSeconds: env.JWKS_MAX_AGE_SECONDS,
    keyPublishLeadSeconds: env.KEY_PUBLISH_LEAD_SECONDS,
    bcryptCost: env.BCRYPT_COST,
    secretKey: env.SECRET_KEY,
    authRateLimitPerMinute: env.AUTH_RATE_LIMIT_PER_MINUTE,
    apiKeyLimitPerUser: env.API_KEY_LIMIT_PER_USER,
    maxEventLoopDelayMs: env.MAX_EVENT_LOOP_DELAY_MS,
    passwordQueueMaxWaitMs: env.PASSWORD_QUEUE_MAX_WAIT_MS,
    sessionRetentionDays: env.SESSION_RETENTION_DAYS,
    auditRetentionDays: env.AUDIT_RETENTION_DAYS,
    retentionIntervalSeconds: env.RETENTION_INTERVAL_SECONDS,
    metrics: { port: env.METRICS_PORT, host: env.METRICS_HOST ?? env.HOST },
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
    logLevel: env.LOG_LEVEL,
    passwordGrant: env.PASSWORD_GRANT === 'enabled',
    oauth: {
      // The hosted sign-in page's links: this service's sign-up page and the dashboard's reset page, unless the platform has its own.
      signUpUrl: env.SIGN_UP_URL,
      forgotPasswordUrl: env.PASSWORD_RESET_URL ?? `${issuer}/dashboard/#/reset-password`,
    },
    email: {
      smtpUrl: env.SMTP_URL,
      from: env.EMAIL_FROM ?? `${env.PRODUCT_NAME} <no-reply@${new URL(issuer).hostname}>`,
      productName: env.PRODUCT_NAME,
      maxAttempts: env.EMAIL_MAX_ATTEMPTS,
      retryBaseSeconds: env.EMAIL_RETRY_BASE_SECONDS,
      pollIntervalMs: env.EMAIL_POLL_INTERVAL_MS,
      // Hash routes of the dashboard SPA, served by this service.
      passwordResetUrl: env.PASSWORD_RESET_URL ?? `${issuer}/dashboard/#/reset-password`,
      emailVerifyUrl: env.EMAIL_VERIFY_URL ?? `${issuer}/dashboard/#/verify-email`,
      credentialRemovalUrl: env.CREDENTIAL_REMOVAL_URL ?? `${issuer}/dashboard/#/remove-credentials`,
      securityPageUrl: env.SECURITY_PAGE_URL ?? `${issuer}/dashboard/#/security`,
      devMailbox: !env.SMTP_URL && env.NODE_ENV !== 'production',
      passwordResetTtlSeconds: env.PASSWORD_RESET_TTL_SECONDS,
      emailVerifyTtlSeconds: env.EMAIL_VERIFY_TTL_SECONDS,
      requireVerification: env.REQUIRE_EMAIL_VERIFICATION,
      rateLimitPerAddressPerHour: env.EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR,
      rateLimitPerIpPerHour: env.EMAIL_RATE_LIMIT_PER_IP_PER_HOUR,
      retentionDays: env.EMAIL_RETENTION_DAYS,
    },
    webhooks: {
      retryBaseSeconds: env.WEBHOOK_RETRY_BASE_SECONDS,
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      allowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      disableAfterDays: env.WEBHOOK_DISABLE_AFTER_DAYS,
      pollIntervalMs: env.WEBHOOK_POLL_INTERVAL_MS,
    },
    mfa: {
      requireForAdmins: env.REQUIRE_MFA_FOR_ADMINS ?? env.NODE_ENV === 'production',
      recentAuthMaxAgeSeconds: env.RECENT_AUTH_MAX_AGE_SECONDS,
      totpIssuer: env.PRODUCT_NAME,
      otpAttemptsPerUser: env.OTP_RATE_LIMIT_PER_USER,
    },
    webauthn: {
      rpId: env.WEBAUTHN_RP_ID ?? new URL(issuer).hostname,
      rpName: env.PRODUCT_NAME,
      origins: webauthnOrigins ?? [...new Set([new URL(issuer).origin, ...corsOrigins])],
    },
  }
}
