import { createHmac, generateKeyPair, randomUUID, sign, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp, json, type TestApp } from '../helpers/app.js'
import type { TestDatabase } from '../helpers/database.js'
import type { TestSmtpServer } from '../helpers/smtp.js'
import * as users from '../helpers/users.js'
import { decodePart, PASSWORD, type Account as SignedUpAccount, type Tokens } from '../helpers/users.js'

/**
 * The world the attack catalogue runs in: one service on one database, an
 * attacker's key pair, the server's own signing key (so that a forgery
 * changes exactly one thing in an otherwise valid token), and small helpers
 * for the HTTP calls every attack makes.
 */

export { PASSWORD, decodePart, uniqueEmail, type Tokens } from '../helpers/users.js'
export const SPA_ORIGIN = 'http://spa.test'
export const EVIL_ORIGIN = 'https://evil.example'

type App = TestApp['app']
export type Response = LightMyRequestResponse

export type Account = SignedUpAccount

export type Header = Record<string, unknown>
export type Claims = Record<string, unknown>

export const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** An ES256 JWS over exactly the header and claims given. */
export function es256 (key: KeyObject, h: Header, c: Claims): string {
  const input = `${b64(h)}.${b64(c)}`
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

export function hs256 (secret: string | Buffer, h: Header, c: Claims): string {
  const input = `${b64(h)}.${b64(c)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

export const setCookies = (response: Response): string[] => ([] as string[]).concat(response.headers['set-cookie'] ?? [])

/**
 * Tests that move the clock sync the revocation list by hand; a sync of its
 * own poll that began before the move and ends after would set the list's
 * last-synced time back, and the list would look stale (503) until the next
 * poll. Serialising every sync (the poll's and the test's) removes that race
 * of the harness; the service itself never runs two syncs at once.
 */
export function serializeRevocationSync (app: App): void {
  const list = app.revocations
  const sync = list.sync.bind(list)
  let chain: Promise<void> = Promise.resolve()
  list.sync = () => {
    const next = chain.then(sync, sync)
    chain = next.catch(() => {})
    return next
  }
}

/** One message as a mailbox shows it: its subject, its text, and the token of its link when it has one. */
export interface Mail {
  to: string
  subject: string
  text: string
  token: string | null
}

/**
 * Where cases read the service's mail, as its recipient would: the outbox
 * as the development mailbox renders it (the catalogue's service has no
 * SMTP_URL), or what a real SMTP server received (takeover.test.ts).
 */
export interface Mailbox {
  readonly kind: 'outbox' | 'smtp'
  /** Every message to `to` so far, oldest first, once the mail queued so far has arrived. */
  all(to: string): Promise<Mail[]>
  /** The newest message to `to` whose subject contains `subject`; throws when there is none. */
  latest(to: string, subject: string): Promise<Mail>
}

/** The token of a message's link (in its fragment or the fragment's query), or null. */
export function mailToken (text: string): string | null {
  const match = /[#?&]token=([A-Za-z0-9_%-]+)/.exec(text)
  return match ? decodeURIComponent(match[1]!) : null
}

abstract class BaseMailbox implements Mailbox {
  abstract readonly kind: 'outbox' | 'smtp'
  abstract all (to: string): Promise<Mail[]>
  async latest (to: string, subject: string): Promise<Mail> {
    const messages = await this.all(to)
    const found = messages.findLast((mail) => mail.subject.includes(subject))
    if (!found) throw new Error(`${this.kind} mailbox: no message to ${to} with "${subject}" in its subject (${messages.map((m) => m.subject).join(' / ') || 'none at all'})`)
    return found
  }
}

/** The outbox, rendered as the development mailbox shows it (links decrypted): the default, for a service without SMTP_URL. */
export class OutboxMailbox extends BaseMailbox {
  readonly kind = 'outbox'
  constructor (private readonly app: App) {
    super()
  }

  async all (to: string): Promise<Mail[]> {
    await this.app.recovery.settled()
    const rows = await this.app.db.emailOutbox.findMany({ where: { recipient: to }, orderBy: [{ createdAt: 'asc' }] })
    return rows.map((row) => {
      try {
        const { subject, text } = this.app.outbox.render(row)
        return { to, subject, text, token: mailToken(text) }
      } catch {
        // Sent by a sibling instance with SMTP: its link was erased.
        return { to, subject: `(${row.template}: its link was erased once sent)`, text: '', token: null }
      }
    })
  }
}

/** What a real SMTP server received (test/helpers/smtp.ts TestSmtpServer), for a service with SMTP_URL pointing at it. */
export class SmtpMailbox extends BaseMailbox {
  readonly kind = 'smtp'
  constructor (
    private readonly app: App,
    private readonly smtp: Pick<TestSmtpServer, 'to' | 'waitFor'>
  ) {
    super()
  }

  /** Waits until the server holds as many messages to `to` as the outbox has queued for it (every instance on the database delivers). */
  async all (to: string): Promise<Mail[]> {
    await this.app.recovery.settled()
    const queued = await this.app.db.emailOutbox.count({ where: { recipient: to, deadAt: null } })
    await this.smtp.waitFor(() => this.smtp.to(to).length >= queued, 10_000)
    return this.smtp.to(to).map((mail) => ({ to, subject: mail.subject, text: mail.text, token: mailToken(mail.text) }))
  }
}

export interface AttackContextOptions {
  /** Environment of the context's service on top of TEST_ENV (SMTP_URL...); apps built with ctx.buildApp get it too. */
  env?: Record<string, string>
  /** How cases read mail (default: the outbox). */
  mailbox?: (app: App) => Mailbox
}

export class AttackContext {
  readonly app: App
  readonly config: TestApp['config']
  readonly clock: TestApp['clock']
  serverKey!: KeyObject
  serverKid!: string
  serverPem!: string
  serverJwk!: JWK
  attackerKey!: KeyObject
  attackerJwk!: JWK
  attackerKid!: string
  victim!: Account
  /** The service's mail, as its recipients read it. */
  readonly mail: Mailbox

  private constructor (
    readonly main: TestApp,
    readonly database: TestDatabase,
    readonly env: Record<string, string>,
    mailbox: (app: App) => Mailbox
  ) {
    this.app = main.app
    this.config = main.config
    this.clock = main.clock
    this.mail = mailbox(main.app)
  }

  static async create (database: TestDatabase, options: AttackContextOptions = {}): Promise<AttackContext> {
    const env = options.env ?? {}
    const main = await buildTestApp(env, { database })
    const ctx = new AttackContext(main, database, env, options.mailbox ?? ((app) => new OutboxMailbox(app)))
    serializeRevocationSync(main.app)
    await ctx.init()
    return ctx
  }

  /**
   * A second instance on the context's database and clock, with the
   * context's environment and `env` on top (another setting, such as
   * REQUIRE_MFA_FOR_ADMINS). The caller closes it.
   */
  async buildApp (env: Record<string, string>): Promise<TestApp> {
    const built = await buildTestApp({ ...this.env, ...env }, { database: this.database, clock: this.clock })
    serializeRevocationSync(built.app)
    return built
  }

  private async init () {
    this.victim = await this.signup('victim')
    await this.app.keys.sign({}, { typ: 'warm-up' })
    const current = this.app.keys.currentKey()
    if (!current?.privateKey) throw new Error('the KeyStore did not expose its current private key')
    this.serverKey = current.privateKey
    this.serverKid = current.kid
    this.serverPem = this.app.keys.publicKeyPem(this.serverKid)!
    const jwks = json<{ keys: JWK[] }>(await this.app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
    this.serverJwk = jwks.keys.find((k) => k.kid === this.serverKid)!
    const attacker = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
    this.attackerKey = attacker.privateKey
    this.attackerJwk = await exportJWK(attacker.publicKey)
    this.attackerKid = await calculateJwkThumbprint(this.attackerJwk)
  }

  close () {
    return this.main.close()
  }

  /**
   * Moves the test clock and syncs the revocation list at once: its poll runs
   * on real timers, and a jump of the clock would otherwise leave it looking
   * stale (503) until the next poll.
   */
  async advance (seconds: number): Promise<void> {
    this.clock.advance(seconds)
    await this.app.revocations.sync()
  }

  /** Claims of a valid access token of the victim's session, with overrides (undefined removes). */
  claims (overrides: Claims = {}): Claims {
    const issued = decodePart(this.victim.access_token, 1)
    const iat = Math.floor(Date.now() / 1000)
    const merged: Claims = {
      iss: this.config.issuer,
      aud: this.config.audience,
      sub: issued.sub,
      client_id: 'mobile',
      sid: issued.sid,
      jti: randomUUID(),
      iat,
      exp: iat + 600,
      scope: 'profile',
      role: 'user',
      amr: ['pwd'],
      auth_time: iat,
      ...overrides,
    }
    for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key]
    return merged
  }

  header (overrides: Header = {}): Header {
    const merged: Header = { alg: 'ES256', kid: this.serverKid, typ: 'at+jwt', ...overrides }
    for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key]
    return merged
  }

  /** A token signed with the real server key: valid unless the overrides make it invalid. */
  serverSigned (h: Header = {}, c: Claims = {}): string {
    return es256(this.serverKey, this.header(h), this.claims(c))
  }

  attackerSigned (h: Header = {}, c: Claims = {}): string {
    return es256(this.attackerKey, this.header({ kid: this.attackerKid, ...h }), this.claims(c))
  }

  signup (label: string, options: { clientId?: string; email?: string } = {}): Promise<Account> {
    return users.signup(this.app, { label, ...options })
  }

  passwordGrant (username: string, password: string, extra: Record<string, unknown> = {}, target: App = this.app, remoteAddress?: string) {
    return users.passwordGrant(target, username, { password, clientId: 'mobile', extra, ...(remoteAddress ? { remoteAddress } : {}) })
  }

  login (email: string, clientId = 'mobile'): Promise<Tokens> {
    return users.login(this.app, email, { clientId })
  }

  /** A web (cookie transport) login: the refresh token is the cookie's value. */
  async webLogin (email: string): Promise<{ access_token: string; cookie: string; cookieName: string }> {
    const response = await this.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { origin: SPA_ORIGIN, 'x-requested-with': 'XMLHttpRequest' },
      payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'web' },
    })
    if (response.statusCode !== 200) throw new Error(`web login: ${response.statusCode} ${response.body}`)
    const cookie = response.cookies.find((c) => c.name.endsWith('refresh_token'))
    if (!cookie) throw new Error('web login set no refresh cookie')
    return { access_token: json<Tokens>(response).access_token, cookie: cookie.value, cookieName: cookie.name }
  }

  refresh (refreshToken: string, clientId = 'mobile') {
    return users.refresh(this.app, refreshToken, { clientId })
  }

  me (authorization: string | undefined, extraHeaders: Record<string, string> = {}) {
    return this.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { ...(authorization === undefined ? {} : { authorization }), ...extraHeaders },
    })
  }

  bearer (token: string) {
    return this.me(`Bearer ${token}`)
  }

  createApiKey (accessToken: string, scopes: string[] = ['profile']): Promise<{ id: string; key: string }> {
    return users.createApiKey(this.app, accessToken, { name: 'catalogue', scopes })
  }

  /** Promotes straight in the database and waits until the new admin token is accepted (users.makeAdmin). */
  makeAdmin (account: Account): Promise<Tokens> {
    return users.makeAdmin(this.app, account, { clientId: 'mobile' })
  }

  /** The session row an access token belongs to (its refresh-token family: generation, live hash, revocation). */
  sessionOf (accessToken: string) {
    return this.app.db.session.findUniqueOrThrow({ where: { id: users.sidOf(accessToken) } })
  }

  async sessionRevoked (accessToken: string): Promise<boolean> {
    const sid = users.sidOf(accessToken)
    const session = await this.app.db.session.findUnique({ where: { id: sid }, select: { revokedAt: true } })
    return session?.revokedAt != null
  }
}
