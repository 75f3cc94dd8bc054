import type { Test } from 'tap'
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { PROJECT_ROOT } from '../../src/paths.js'
import { json, listeningTestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * Swagger UI opens with what the service is and where to start, not with
 * input-rule jargon (src/http/external/swagger.ts, the OpenAPI
 * info.description): the first thing its intro says is what the service is,
 * then the first calls to make; the input rules come last.
 */

await browserTest('Swagger UI opens with what the service is', run)

async function run (t: Test) {
  const server = await listeningTestApp()
  t.teardown(server.close)

  const doc = json<{ info: { description: string } }>(await server.app.inject({ method: 'GET', url: '/docs/json' }))
  const text = doc.info.description
  t.match(text, /^An authentication service for /, 'the description begins with what the service is')
  const order = ['Where to start', '/auth/signup', '/auth/token', 'Bearer', 'grant_type=refresh_token', 'Input rules'].map((part) => text.indexOf(part))
  t.ok(order.every((at) => at >= 0), 'it says where to start, and keeps the input rules')
  t.same(order, [...order].sort((a, b) => a - b), 'in that order: the input rules last')
  t.match(text, /x-no-nul/, 'the rules still name their schema keywords')
  t.match(text, /x-lower-case/)

  const context = await launchBrowser(t, 'docs-intro')
  const problems: string[] = []
  const page = watchPage(context.pages()[0] ?? (await context.newPage()), problems)
  await page.goto(`${server.issuer}/docs`)
  const intro = page.locator('.information-container .info .description')
  await intro.waitFor()
  const paragraphs = (await intro.locator('p, li').allTextContents()).map((p) => p.trim()).filter(Boolean)
  t.match(paragraphs[0], /^An authentication service for a platform's SPAs, mobile apps and services\./, 'the first paragraph on screen says what the service is')
  t.match(paragraphs.at(-1), /^Input rules:/, 'the input rules come last')
  t.ok(await intro.getByRole('listitem').filter({ hasText: 'POST /auth/signup' }).count(), 'the first steps are a list')
  const screenshots = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
  await mkdir(screenshots, { recursive: true })
  await page.screenshot({ path: join(screenshots, 'docs-intro.png') })
  t.same(problems, [], 'no page error or CSP violation')
}
