import fc from 'fast-check'
import t from 'tap'
import { buildTestApp, json, TestClock, type TestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { serializeRevocationSync } from '../security/context.js'
import { passwordGrant, refresh, signup } from '../helpers/users.js'

/**
 * Model-based property test of sessions (DESIGN §3.5). fast-check draws
 * random sequences of login, refresh (the live token, or a retired one inside
 * or outside the grace window), concurrent refreshes, logout with each scope,
 * RFC 7009 revocation, password change and clock advances; each runs against
 * the real service (app.inject) and against a small reference model of §3.5,
 * and every answer must be the one the model predicts. After each sequence
 * the database must hold the rotation invariants, and the user's live
 * sessions must be the model's. A divergence fails with the shrunk sequence.
 *
 * PROPERTY_RUNS sets the number of sequences (200 in CI; `npm run
 * test:property` runs 10 000). PROPERTY_SEED replays a reported failure.
 */

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200)
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED)

const GRACE = 10
const IDLE = 300
const ABSOLUTE = 900
const PASSWORDS = ['first fine passphrase', 'second fine passphrase']

/**
 * A clock that moves only when told: the model and the service then agree on
 * every instant, and the grace-window edges cannot be blurred by a slow
 * machine. Access tokens live far longer than any sequence, because their
 * expiry is checked against the real clock by the JWT library.
 */
class FrozenClock extends TestClock {
  private at = Date.now()
  override now = (): number => this.at
  override advance (seconds: number): void {
    this.at += seconds * 1000
  }
}

const database = await createTestDatabase()
const clock = new FrozenClock()
const main: TestApp = await buildTestApp(
  {
    REFRESH_GRACE_SECONDS: String(GRACE),
    REFRESH_IDLE_TTL_SECONDS: String(IDLE),
    REFRESH_ABSOLUTE_TTL_SECONDS: String(ABSOLUTE),
    ACCESS_TOKEN_TTL_SECONDS: String(30 * 24 * 3600),
  },
  { database, clock }
)
const { app } = main
serializeRevocationSync(app)
t.teardown(async () => {
  await main.close()
  await database.drop()
})

// ------------------------------------------------------------------ the model

interface ModelSession {
  /** The refresh tokens of the family in order; the last is the live one. */
  chain: string[]
  /** When each token of the chain was retired (ms), null for the live one. */
  retiredAt: (number | null)[]
  access: string
  revoked: boolean
  idleExpiresAt: number
  absoluteExpiresAt: number
}

interface Model {
  passwordIndex: number
  sessions: ModelSession[]
}

interface Real {
  email: string
  userId: string
}

type Outcome = { status: 200; refreshToken: string } | { status: 400 }

const live = (s: ModelSession) => s.chain[s.chain.length - 1]!

/** What §3.5 says a refresh with `token` of `session` answers at `now`, and what it changes. */
function predictRefresh (session: ModelSession, index: number, now: number): { kind: 'rotate' | 'grace' | 'reuse' | 'refused' } {
  if (session.revoked) return { kind: 'refused' }
  const expired = session.idleExpiresAt <= now || session.absoluteExpiresAt <= now
  if (expired) return { kind: 'refused' }
  const retiredAt = session.retiredAt[index]
  if (retiredAt === null || retiredAt === undefined) return { kind: 'rotate' }
  if (retiredAt + GRACE * 1000 > now) return { kind: 'grace' }
  return { kind: 'reuse' }
}

function applyRotation (session: ModelSession, newToken: string, access: string, now: number) {
  session.retiredAt[session.retiredAt.length - 1] = now
  session.chain.push(newToken)
  session.retiredAt.push(null)
  session.access = access
  session.idleExpiresAt = Math.min(now + IDLE * 1000, session.absoluteExpiresAt)
}

// ------------------------------------------------------------------ calls to the service

const refreshCall = (token: string) => refresh(app, token, { clientId: 'mobile' })

function outcomeOf (response: Awaited<ReturnType<typeof refreshCall>>): Outcome & { access?: string } {
  if (response.statusCode === 200) {
    const body = json<{ refresh_token: string; access_token: string }>(response)
    return { status: 200, refreshToken: body.refresh_token, access: body.access_token }
  }
  if (response.statusCode !== 400 || json(response).error !== 'invalid_grant') {
    throw new Error(`unexpected refresh answer ${response.statusCode} ${response.body}`)
  }
  return { status: 400 }
}

function expectEqual<T> (actual: T, expected: T, what: string) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

// ------------------------------------------------------------------ commands

type Cmd = fc.AsyncCommand<Model, Real, false>

class Login implements Cmd {
  check = () => true
  async run (m: Model, r: Real) {
    const response = await passwordGrant(app, r.email, { password: PASSWORDS[m.passwordIndex], clientId: 'mobile' })
    expectEqual(response.statusCode, 200, 'login status')
    const body = json<{ refresh_token: string; access_token: string }>(response)
    const now = clock.now()
    m.sessions.push({
      chain: [body.refresh_token],
      retiredAt: [null],
      access: body.access_token,
      revoked: false,
      idleExpiresAt: now + IDLE * 1000,
      absoluteExpiresAt: now + ABSOLUTE * 1000,
    })
  }

  toString = () => 'login'
}

/** Presents the token `back` generations below the live one (0: the live token). */
class Refresh implements Cmd {
  constructor (
    readonly session: number,
    readonly back: number
  ) {}

  check = (m: Model) => m.sessions.length > 0
  async run (m: Model) {
    const session = m.sessions[this.session % m.sessions.length]!
    const index = Math.max(0, session.chain.length - 1 - this.back)
    const token = session.chain[index]!
    const now = clock.now()
    const predicted = predictRefresh(session, index, now)
    const actual = outcomeOf(await refreshCall(token))
    switch (predicted.kind) {
      case 'rotate':
        expectEqual(actual.status, 200, 'rotation status')
        if (actual.status === 200) {
          if (session.chain.includes(actual.refreshToken)) throw new Error('rotation returned a token of the chain again')
          applyRotation(session, actual.refreshToken, actual.access!, now)
        }
        break
      case 'grace':
        expectEqual(actual.status, 200, 'grace retry status')
        if (actual.status === 200) {
          expectEqual(actual.refreshToken, live(session), 'a grace retry answers with the live token')
          session.access = actual.access!
        }
        break
      case 'reuse':
        expectEqual(actual.status, 400, 'reuse status')
        session.revoked = true
        break
      case 'refused':
        expectEqual(actual.status, 400, 'refused refresh status')
        break
    }
  }

  toString = () => `refresh(session ${this.session}, back ${this.back})`
}

/** Several presentations of the live token at once: one rotation, one successor for all. */
class ConcurrentRefresh implements Cmd {
  constructor (
    readonly session: number,
    readonly count: number
  ) {}

  check = (m: Model) => m.sessions.length > 0
  async run (m: Model) {
    const session = m.sessions[this.session % m.sessions.length]!
    const index = session.chain.length - 1
    const now = clock.now()
    const predicted = predictRefresh(session, index, now)
    const outcomes = (await Promise.all(Array.from({ length: this.count }, () => refreshCall(session.chain[index]!)))).map(outcomeOf)
    if (predicted.kind === 'rotate') {
      for (const outcome of outcomes) expectEqual(outcome.status, 200, 'concurrent refresh status')
      const tokens = new Set(outcomes.map((o) => (o.status === 200 ? o.refreshToken : '')))
      expectEqual(tokens.size, 1, 'distinct successors among concurrent refreshes')
      const first = outcomes[0] as { refreshToken: string; access: string }
      applyRotation(session, first.refreshToken, first.access, now)
    } else {
      for (const outcome of outcomes) expectEqual(outcome.status, 400, 'concurrent refresh of a dead token')
    }
  }

  toString = () => `concurrentRefresh(session ${this.session}, ×${this.count})`
}

class Logout implements Cmd {
  constructor (
    readonly session: number,
    readonly scope: 'current' | 'others' | 'global'
  ) {}

  check = (m: Model) => m.sessions.length > 0
  async run (m: Model) {
    const index = this.session % m.sessions.length
    const session = m.sessions[index]!
    const response = await app.inject({
      method: 'POST',
      url: `/auth/logout?scope=${this.scope}`,
      headers: { authorization: `Bearer ${session.access}` },
    })
    if (session.revoked) {
      expectEqual(response.statusCode, 401, 'logout with a revoked session')
      return
    }
    expectEqual(response.statusCode, 204, 'logout status')
    m.sessions.forEach((s, i) => {
      if (this.scope === 'global' || (this.scope === 'current') === (i === index)) s.revoked = true
    })
  }

  toString = () => `logout(session ${this.session}, ${this.scope})`
}

/** RFC 7009 revocation with one of the family's tokens (live or retired): the session dies. */
class Revoke implements Cmd {
  constructor (
    readonly session: number,
    readonly back: number
  ) {}

  check = (m: Model) => m.sessions.length > 0
  async run (m: Model) {
    const session = m.sessions[this.session % m.sessions.length]!
    const token = session.chain[Math.max(0, session.chain.length - 1 - this.back)]!
    const response = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token, client_id: 'mobile' } })
    expectEqual(response.statusCode, 200, 'revocation status')
    session.revoked = true
  }

  toString = () => `revoke(session ${this.session}, back ${this.back})`
}

class ChangePassword implements Cmd {
  constructor (readonly session: number) {}
  check = (m: Model) => m.sessions.length > 0
  async run (m: Model) {
    const index = this.session % m.sessions.length
    const session = m.sessions[index]!
    const next = 1 - m.passwordIndex
    const response = await app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: { authorization: `Bearer ${session.access}` },
      payload: { currentPassword: PASSWORDS[m.passwordIndex], newPassword: PASSWORDS[next] },
    })
    if (session.revoked) {
      expectEqual(response.statusCode, 401, 'password change with a revoked session')
      return
    }
    expectEqual(response.statusCode, 204, 'password change status')
    m.passwordIndex = next
    m.sessions.forEach((s, i) => {
      if (i !== index) s.revoked = true
    })
  }

  toString = () => `changePassword(session ${this.session})`
}

class Advance implements Cmd {
  constructor (readonly seconds: number) {}
  check = () => true
  async run () {
    clock.advance(this.seconds)
    // The revocation list's poll runs on real timers; sync it now so the jump does not look like a stale list.
    await app.revocations.sync()
  }

  toString = () => `advance(${this.seconds} s)`
}

/** Every access token answers as the model says: accepted while its session lives. */
async function checkAccessTokens (m: Model) {
  for (const [i, session] of m.sessions.entries()) {
    const response = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${session.access}` } })
    expectEqual(response.statusCode, session.revoked ? 401 : 200, `access token of session ${i}`)
  }
}

/**
 * The database after a sequence: one row per session whatever its rotations,
 * holding its live token, at the generation the model's chain reached.
 */
async function checkInvariants (m: Model, r: Real) {
  const rows = await app.db.session.findMany({
    where: { userId: r.userId },
    orderBy: { createdAt: 'asc' },
    select: { id: true, generation: true, refreshTokenHash: true },
  })
  expectEqual(rows.length, m.sessions.length, 'sessions in the database')
  for (const [i, session] of m.sessions.entries()) {
    const id = app.sessions.readRefreshToken(session.chain[0]!)!.sessionId
    const row = rows.find((candidate) => candidate.id === id)
    expectEqual(row?.generation, session.chain.length - 1, `generation of session ${i}`)
    expectEqual(row?.refreshTokenHash?.length, 32, `live token hash of session ${i}`)
  }
  const now = clock.now()
  const modelLive = m.sessions.filter((s) => !s.revoked && s.idleExpiresAt > now && s.absoluteExpiresAt > now).length
  expectEqual((await app.sessions.listLive(r.userId)).length, modelLive, 'live sessions')
}

const session = fc.nat({ max: 3 })
const commands = [
  fc.constant(new Login()),
  fc.tuple(session, fc.constantFrom(0, 0, 1, 2)).map(([s, back]) => new Refresh(s, back)),
  fc.tuple(session, fc.integer({ min: 2, max: 4 })).map(([s, n]) => new ConcurrentRefresh(s, n)),
  fc.tuple(session, fc.constantFrom('current', 'others', 'global') as fc.Arbitrary<'current' | 'others' | 'global'>).map(
    ([s, scope]) => new Logout(s, scope)
  ),
  fc.tuple(session, fc.constantFrom(0, 1)).map(([s, back]) => new Revoke(s, back)),
  session.map((s) => new ChangePassword(s)),
  // Inside and outside the grace window, past the idle expiry, towards the absolute one.
  fc.constantFrom(1, GRACE - 2, GRACE + 1, 60, IDLE - 30, IDLE + 1).map((s) => new Advance(s)),
]

let sequences = 0
let steps = 0
let counter = 0

t.test(`${RUNS} random session sequences agree with the model`, async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 12, size: 'max' }), async (cmds) => {
      sequences++
      const email = `model-${process.pid}-${++counter}@model.test`
      const body = await signup(app, { email, password: PASSWORDS[0] })
      const now = clock.now()
      const model: Model = {
        passwordIndex: 0,
        sessions: [
          {
            chain: [body.refresh_token],
            retiredAt: [null],
            access: body.access_token,
            revoked: false,
            idleExpiresAt: now + IDLE * 1000,
            absoluteExpiresAt: now + ABSOLUTE * 1000,
          },
        ],
      }
      const real: Real = { email, userId: body.id }
      const list = [...cmds]
      steps += list.length
      await fc.asyncModelRun(() => ({ model, real }), cmds)
      await checkAccessTokens(model)
      await checkInvariants(model, real)
    }),
    { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) }
  )
  t.pass(`${sequences} sequences (including shrinking), ${steps} commands`)
})
