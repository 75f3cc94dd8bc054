import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { REFRESH_TOKEN_LENGTH, RefreshTokenCodec } from '../../../src/features/sessions/refresh-token-codec.js'

const keys = () => ({ mac: randomBytes(32), hash: randomBytes(32), successor: randomBytes(32) })
const codec = new RefreshTokenCodec(keys())

t.test('a first token names its session at generation 0, 92 base64url characters', async (t) => {
  const sessionId = randomUUID()
  const first = codec.first(sessionId)
  t.equal(first.token.length, REFRESH_TOKEN_LENGTH)
  t.equal(REFRESH_TOKEN_LENGTH, 92)
  t.match(first.token, /^[A-Za-z0-9_-]{92}$/)
  t.same(codec.read(first.token), { token: first.token, sessionId, generation: 0 })
  t.not(codec.first(sessionId).token, first.token, 'a fresh random secret each time')
})

t.test('descendants are deterministic, and each is what stepping one at a time gives', async (t) => {
  const first = codec.first(randomUUID())
  let stepped = first
  for (let i = 0; i < 5; i++) stepped = codec.descendant(stepped)
  const jumped = codec.descendant(first, 5)
  t.same(jumped, stepped, 'five steps at once = five single steps')
  t.equal(jumped.generation, 5)
  t.same(codec.read(jumped.token), jumped, 'a descendant reads back')
  t.same(codec.descendant(first), codec.descendant(first), 'the same parent always has the same successor')
  t.not(codec.descendant(first).token.slice(28, 71), first.token.slice(28, 71), 'with a new secret')
  const other = new RefreshTokenCodec(keys())
  t.not(other.descendant(first).token, codec.descendant(first).token, 'the successor depends on the server key')
})

t.test('anything that is not a token of ours reads as null', async (t) => {
  const token = codec.first(randomUUID()).token
  const bytes = Buffer.from(token, 'base64url')
  const flip = (index: number) => {
    const copy = Buffer.from(bytes)
    copy[index] = copy[index]! ^ 0x01
    return copy.toString('base64url')
  }
  const cases: [string, string][] = [
    ['another server key', new RefreshTokenCodec(keys()).first(randomUUID()).token],
    ['the version byte changed', flip(0)],
    ['the session id changed', flip(5)],
    ['the generation changed', flip(20)],
    ['the secret changed', flip(40)],
    ['the MAC changed', flip(60)],
    ['one character short', token.slice(1)],
    ['one character more', `${token}A`],
    ['the layout before DESIGN §3.13 (32 random bytes)', randomBytes(32).toString('base64url')],
    ['a character outside base64url', `${token.slice(0, 10)}+${token.slice(11)}`],
    ['empty', ''],
    ['NUL bytes', '\u0000'.repeat(92)],
  ]
  for (const [name, candidate] of cases) t.equal(codec.read(candidate), null, name)
  t.ok(codec.read(token), 'the token itself still reads')
})

t.test('the stored hash is keyed and differs per token', async (t) => {
  const first = codec.first(randomUUID())
  const next = codec.descendant(first)
  t.equal(codec.hash(first.token).length, 32)
  t.notSame(codec.hash(first.token), codec.hash(next.token))
  t.notSame(new RefreshTokenCodec(keys()).hash(first.token), codec.hash(first.token), 'another key, another hash')
})
