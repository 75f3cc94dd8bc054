import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { listeningTestApp } from '../helpers/app.js'
import { CHROMIUM, launchBrowser } from '../helpers/browser.js'

/**
 * Swagger UI at /docs in headless Chromium under its Content-Security-Policy
 * (src/http/external/swagger.ts): the page renders the API's operations,
 * its document loads, and the browser reports no CSP violation. The header
 * test (test/http/security-headers.test.ts) checks the policy's text;
 * this one checks that a browser enforcing it still runs the UI.
 */

if (!existsSync(CHROMIUM)) {
  const reason = `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`
  if (process.env.CI) t.fail(`browser tests cannot run: ${reason}`)
  else t.pass(`skipped: ${reason}`, { skip: reason })
} else {
  await t.test('Swagger UI renders under its CSP', run)
}

async function run (t: Test) {
  const server = await listeningTestApp()
  t.teardown(server.close)

  const context = await launchBrowser(t, 'docs')
  const page = context.pages()[0] ?? (await context.newPage())

  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
  // Violations as the page itself sees them, reported even when nothing is logged.
  await page.addInitScript(
    "document.addEventListener('securitypolicyviolation', (event) => console.error('CSP violation: ' + event.violatedDirective + ' ' + event.blockedURI))"
  )

  const response = await page.goto(`${server.issuer}/docs`)
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/, 'the page is served under the docs CSP')
  await page.waitForSelector('.opblock-summary-path', { state: 'attached' })
  const paths = await page.locator('.opblock-summary-path').allTextContents()
  t.ok(paths.some((path) => path.includes('/auth/token')), 'the operations from /docs/json are rendered')
  t.ok(paths.some((path) => path.includes('/.well-known/jwks.json')))

  // Opening an operation renders its schemas (styles and icons in use).
  await page.locator('.opblock-summary', { hasText: '/auth/token' }).first().click()
  await page.waitForSelector('.opblock-body', { state: 'visible' })

  await mkdir(join(PROJECT_ROOT, '.tap', 'e2e-screenshots'), { recursive: true })
  await page.screenshot({ path: join(PROJECT_ROOT, '.tap', 'e2e-screenshots', 'docs.png') })
  t.same(problems, [], 'no CSP violation, page error or console error')
}
