import t from 'tap'
import { emailProblem, foldEmail, normalizeEmail } from '../../../src/features/accounts/accounts.js'
import { DomainError } from '../../../src/errors.js'

/**
 * Email normalisation (security review finding 7): fold first (NFKC, trim,
 * lower case), then check what was folded, RFC 5321 §4.5.3.1 limits in
 * octets, invisible and control characters refused.
 */

const octets = (s: string) => Buffer.byteLength(s, 'utf8')

t.test('fold, then check the folded form', async (t) => {
  t.equal(normalizeEmail('  Ａlice@Example.TEST\t'), 'alice@example.test', 'fullwidth, case and surrounding whitespace fold')
  t.equal(normalizeEmail('ﬁ@example.test'), 'fi@example.test', 'a ligature folds to its letters')
  t.equal(normalizeEmail('Ünïcödé@Bücher.example'), 'ünïcödé@bücher.example', 'UTF-8 addresses (RFC 6531) are fine')
  t.equal(foldEmail('x\uFF20y@z.test'), 'x@y@z.test', 'U+FF20 folds to @ ...')
  t.throws(() => normalizeEmail('x\uFF20y@z.test'), { code: 'invalid_email', message: /exactly one @/ }, '... and the folded form has two')
  t.throws(() => normalizeEmail('\uFDFA'.repeat(3) + '@z.test'), DomainError, 'U+FDFA folds into words with spaces')
})

t.test('RFC 5321 limits count octets of the normalised address', async (t) => {
  const local64 = 'a'.repeat(64)
  t.equal(emailProblem(`${local64}@example.test`), null, '64-octet local part')
  t.match(emailProblem(`${local64}a@example.test`), /64 octets/, '65-octet local part')
  t.match(emailProblem(`${'é'.repeat(33)}@example.test`), /64 octets/, '33 two-octet characters are 66 octets')
  t.match(emailProblem(foldEmail(`${'\uFB03'.repeat(22)}@example.test`)), /64 octets/, '22 ligatures fold into 66 characters')
  const domain = `${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(63)}.${'d'.repeat(57)}` // 249 octets
  t.equal(octets(`abcd@${domain}`), 254)
  t.equal(emailProblem(`abcd@${domain}`), null, '254 octets')
  t.match(emailProblem(`abcde@${domain}`), /254 octets/, '255 octets')
  t.match(emailProblem(`a@${'d'.repeat(64)}.test`), /domain/, 'a 64-octet label')
})

t.test('shape: one @, dot-atom local part, a domain name', async (t) => {
  for (const good of ['a@b.co', "o'neil+tag@mail.example", 'a.b.c@x-y.example', 'ü@bücher.de']) t.equal(emailProblem(good), null, good)
  for (const bad of ['a@b@c.test', '@b.test', 'a@', 'a..b@c.test', '.a@c.test', 'a.@c.test', 'a@localhost', 'a@-b.test', 'a@b-.test', 'a@b..test', 'a@1.23', 'a@b.c', '"a b"@c.test', 'a(b)@c.test', 'a@[127.0.0.1]']) {
    t.ok(emailProblem(bad), `${bad}: ${emailProblem(bad)}`)
  }
})

t.test('invisible, control and separator characters are refused, not stripped', async (t) => {
  for (const [label, c] of [
    ['NUL', '\u0000'], ['tab', '\t'], ['C1 NEL', '\u0085'], ['DEL', '\u007F'],
    ['zero-width space', '\u200B'], ['zero-width non-joiner', '\u200C'], ['zero-width joiner', '\u200D'],
    ['left-to-right mark', '\u200E'], ['right-to-left mark', '\u200F'], ['bidi override', '\u202E'], ['bidi isolate', '\u2066'],
    ['word joiner', '\u2060'], ['invisible separator', '\u2063'], ['invisible plus', '\u2064'], ['BOM', '\uFEFF'], ['soft hyphen', '\u00AD'],
    ['Hangul filler', '\u3164'], ['combining grapheme joiner', '\u034F'], ['variation selector', '\uFE0F'], ['tag character', '\u{E0041}'],
    ['private use', '\uE000'], ['lone surrogate', '\uD800'], ['unassigned', '\u0378'], ['no-break space', '\u00A0'], ['ideographic space', '\u3000'], ['line separator', '\u2028'],
  ] as const) {
    const email = `al${c}ice@example.test`
    t.throws(() => normalizeEmail(email), { code: 'invalid_email' }, `${label} inside`)
  }
  t.equal(normalizeEmail('\u00A0alice@example.test\u3000'), 'alice@example.test', 'spaces around the address are trimmed, as before')
})
