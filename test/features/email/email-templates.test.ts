import { mkdtemp, cp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { EMAIL_TEMPLATES, EmailTemplates, escapeHtml, secretLink, TEMPLATES_DIR } from '../../../src/features/email/email-templates.js'

t.test('every template renders with its values; each has a subject, a text and an HTML part', async (t) => {
  const templates = new EmailTemplates()
  const values = { productName: 'P', email: 'a@b.test', newEmail: 'c@d.test', link: 'https://x.test/#token=T', expiresInMinutes: '30', expiresInHours: '24', credentials: '- passkey “Laptop”', credential: 'passkey “Laptop”', securityUrl: 'https://x.test/#/security', url: 'https://hooks.x.test/auth', webhookId: 'W', failingSince: '2026-12-01T00:00:00.000Z' }
  for (const name of EMAIL_TEMPLATES) {
    const rendered = templates.render(name, values)
    t.ok(rendered.subject.startsWith('P: '), `${name}: subject`)
    t.ok(rendered.text.length > 40 && rendered.html.includes('<p>'), `${name}: bodies`)
    t.notMatch(rendered.text + rendered.html, /\{\{/, `${name}: no placeholder left`)
  }
})

t.test('a placeholder without a value fails instead of being sent as is', async (t) => {
  t.throws(() => new EmailTemplates().render('password_reset', { productName: 'P', email: 'a@b.test' }), /uses \{\{/)
})

t.test('a value cannot break the subject line', async (t) => {
  const rendered = new EmailTemplates().render('password_changed', { productName: 'P\r\nBcc: victim@x.test', email: 'a@b.test' })
  t.notMatch(rendered.subject, /[\r\n]/)
})

t.test('a template folder missing a file or a subject line stops the start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'templates-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(TEMPLATES_DIR, dir, { recursive: true })
  await writeFile(join(dir, 'password_reset.txt'), 'no subject here\n')
  t.throws(() => new EmailTemplates(dir), /Subject/)
  await rm(join(dir, 'password_reset.txt'))
  t.throws(() => new EmailTemplates(dir), /ENOENT/)
})

t.test('escapeHtml escapes the five HTML-special characters', async (t) => {
  t.equal(escapeHtml('<a href="x">\'&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
})

t.test('secretLink puts the secret in the fragment', async (t) => {
  t.equal(secretLink('https://app.test/reset', 'abc'), 'https://app.test/reset#token=abc')
  t.equal(secretLink('https://app.test/dashboard/#/reset-password', 'abc'), 'https://app.test/dashboard/#/reset-password?token=abc')
  t.equal(secretLink('https://app.test/#/r?lang=en', 'a+b'), 'https://app.test/#/r?lang=en&token=a%2Bb')
})
