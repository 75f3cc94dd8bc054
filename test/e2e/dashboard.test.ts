import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { browserTest, dashboardService, jsonApi, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * The admin dashboard in real headless Chromium (Debian's /usr/bin/chromium
 * driven by playwright-core; never a downloaded browser), against the service
 * listening on 127.0.0.1 with ISSUER set to the URL the browser uses, so the
 * dashboard's Origin is the issuer's own. Screenshots of every page go to
 * .tap/e2e-screenshots/.
 */

const SCREENSHOTS = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
const PASSWORD = 'a fine passphrase'

await browserTest('the admin dashboard in headless Chromium', run)

async function run (t: Test) {
  const { app, origin, tokenRequests } = await dashboardService(t)

  const api = jsonApi(origin)
  async function signUp (email: string): Promise<string> {
    const response = await api('POST', '/auth/signup', { email, password: PASSWORD })
    if (response.status !== 201) throw new Error(`signup ${email}: ${response.status}`)
    return response.body.user.id as string
  }
  /** A body-transport login: a session whose refresh token the test holds. */
  async function mobileLogin (email: string) {
    return api('POST', '/auth/token', { grant_type: 'password', username: email, password: PASSWORD, client_id: 'mobile' })
  }
  const refreshWith = (refreshToken: string) =>
    api('POST', '/auth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'mobile' })

  const stamp = Date.now()
  const adminEmail = `admin-${stamp}@e2e.test`
  const adminId = await signUp(adminEmail)
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  // The admin's address is verified (the dashboard creates an API key below, which needs it).
  await app.db.user.update({ where: { id: adminId }, data: { emailVerifiedAt: new Date() } })
  const plainEmail = `plain-${stamp}@e2e.test`
  await signUp(plainEmail)
  const targetEmail = `target-${stamp}@e2e.test`
  const targetId = await signUp(targetEmail)
  for (let i = 0; i < 3; i++) await signUp(`filler-${i}-${stamp}@e2e.test`)
  const sessionA = await mobileLogin(targetEmail)
  const sessionB = await mobileLogin(targetEmail)
  t.equal(sessionA.status, 200)
  const sidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string
  const sidA = sidOf(sessionA.body.access_token)
  // The target has an authenticator app on and a passkey (rows written here: the users list is under test, not the set-up).
  await app.db.totpFactor.create({ data: { userId: targetId, secretEncrypted: randomBytes(44), confirmedAt: new Date() } })
  await app.db.passkey.create({
    data: { userId: targetId, credentialId: randomBytes(16).toString('base64url'), publicKey: randomBytes(32), deviceType: 'multiDevice', backedUp: true, aaguid: randomUUID(), name: 'phone' },
  })

  await mkdir(SCREENSHOTS, { recursive: true })
  const context = await launchBrowser(t, 'e2e')

  // CSP violations and page errors fail the run.
  const problems: string[] = []
  const watch = (page: import('playwright-core').Page) => watchPage(page, problems)
  const shot = (page: import('playwright-core').Page, name: string) =>
    page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })

  const tab1 = watch(context.pages()[0] ?? (await context.newPage()))

  async function login (page: import('playwright-core').Page, email: string) {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }

  await t.test('the dashboard is served with a strict CSP', async (t) => {
    const response = await tab1.goto(`${origin}/dashboard/`)
    t.equal(response?.status(), 200)
    const csp = response?.headers()['content-security-policy'] ?? ''
    t.match(csp, /script-src 'self'(;|$)/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval/)
    await tab1.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    await shot(tab1, 'login')
  })

  await t.test('a non-admin is refused', async (t) => {
    await login(tab1, plainEmail)
    await tab1.getByTestId('login-error').waitFor()
    t.match(await tab1.getByTestId('login-error').textContent(), /not an administrator/)
    await shot(tab1, 'login-refused-non-admin')
    const cookies = await context.cookies(`${origin}/auth/token`)
    t.notOk(cookies.some((c) => c.name === 'refresh_token' && c.value), 'the non-admin session was signed out')
  })

  await t.test('admin login', async (t) => {
    await tab1.getByLabel('Email').fill('')
    await login(tab1, adminEmail)
    await tab1.getByTestId('users').waitFor()
    const cookie = (await context.cookies(`${origin}/auth/token`)).find((c) => c.name === 'refresh_token')
    t.ok(cookie, 'refresh cookie set')
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.path, '/auth')
    t.equal(cookie?.sameSite, 'Strict')
    t.equal(await tab1.evaluate('document.cookie'), '', 'no cookie visible to scripts')
    await shot(tab1, 'users')
  })

  /**
   * Polls `check` from here until it holds (15 s at most). The page's CSP
   * forbids eval, so waitForFunction cannot poll a string predicate there.
   */
  async function until (what: string, check: () => Promise<boolean>): Promise<void> {
    for (const started = Date.now(); !(await check());) {
      if (Date.now() - started > 15_000) throw new Error(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  /** Waits until nothing on the page says "Loading…". */
  const loaded = (page: import('playwright-core').Page) => page.locator('.state.loading').first().waitFor({ state: 'detached' })

  /** A row's cells by column header: the users, sessions and audit tables name their columns once. */
  async function cellsByHeader (table: import('playwright-core').Locator, row: import('playwright-core').Locator): Promise<Record<string, string>> {
    const headers = await table.locator('thead th').allTextContents()
    const cells = await row.locator('td').allTextContents()
    return Object.fromEntries(headers.map((header, i) => [header, (cells[i] ?? '').trim()]))
  }

  await t.test('the users list: a count, and verified, second factor and last sign-in columns', async (t) => {
    const table = tab1.getByTestId('users')
    t.same(
      await table.locator('thead th').allTextContents(),
      ['Email', 'Role', 'Status', 'Verified', 'Second factor', 'Last sign-in', 'Created'],
      'the columns'
    )
    t.equal(await tab1.getByTestId('users-total').textContent(), `${await app.db.user.count()} users`, 'how many users there are')
    const target = await cellsByHeader(table, table.locator(`tr[data-user-id="${targetId}"]`))
    t.match(target, { Email: targetEmail, Verified: 'unverified', 'Second factor': 'authenticator app, 1 passkey' })
    const lastLogin = await app.db.auditEvent.findFirstOrThrow({ where: { userId: targetId, type: 'login_succeeded' }, orderBy: { at: 'desc' } })
    t.equal(target['Last sign-in'], await tab1.evaluate(`new Date(${JSON.stringify(lastLogin.at.toISOString())}).toLocaleString()`), 'their last sign-in, in local time')
    const admin = await cellsByHeader(table, table.locator(`tr[data-user-id="${adminId}"]`))
    t.match(admin, { Email: adminEmail, Role: 'admin', Verified: 'verified', 'Second factor': 'none' })
    t.not(admin['Last sign-in'], '—', 'the admin signed in just now')
    const filler = await cellsByHeader(table, table.locator('tbody tr', { hasText: `filler-0-${stamp}` }))
    t.equal(filler['Last sign-in'], '—', 'a user who never signed in after signing up: none')

    await tab1.getByLabel('Search by email').fill('filler-')
    await tab1.getByRole('button', { name: 'Search' }).click()
    await tab1.getByText('3 users match “filler-”').waitFor()
    t.equal(await table.locator('tbody tr').count(), 3, 'the count follows the search')
    await shot(tab1, 'users-columns')
  })

  await t.test('find a user and revoke one of their sessions', async (t) => {
    await tab1.getByLabel('Search by email').fill(`target-${stamp}`)
    await tab1.getByRole('button', { name: 'Search' }).click()
    await tab1.getByRole('link', { name: targetEmail }).click()
    await tab1.getByTestId('sessions').waitFor()
    // Sign-up signed them in too: three sessions.
    t.equal(await tab1.locator('[data-testid=sessions] tbody tr').count(), 3, 'three sessions listed')
    await shot(tab1, 'user')
    await tab1.getByRole('button', { name: `Revoke session ${sidA}` }).click()
    await tab1.locator(`tr[data-session-id="${sidA}"]`).waitFor({ state: 'detached' })
    t.equal(await tab1.locator('[data-testid=sessions] tbody tr').count(), 2, 'the others remain')

    const dead = await refreshWith(sessionA.body.refresh_token)
    t.equal(dead.status, 400, 'the revoked session refresh token is dead')
    t.equal(dead.body.error, 'invalid_grant')
    const alive = await refreshWith(sessionB.body.refresh_token)
    t.equal(alive.status, 200, 'the other session lives on')
    sessionB.body.refresh_token = alive.body.refresh_token
  })

  await t.test('disable a user', async (t) => {
    await tab1.getByRole('button', { name: 'Disable user' }).click()
    await tab1.getByRole('button', { name: 'Enable user' }).waitFor()
    t.equal(await tab1.getByTestId('user-status').textContent(), 'disabled')
    await tab1.getByText('No live sessions.').waitFor()
    await shot(tab1, 'user-disabled')
    t.equal((await refreshWith(sessionB.body.refresh_token)).status, 400, 'their sessions are revoked')
    t.equal((await mobileLogin(targetEmail)).status, 400, 'they cannot sign in')
    const user = await app.administration.getUser(targetId)
    t.equal(user?.disabled, true)
  })

  await t.test('audit events with filters', async (t) => {
    await tab1.getByRole('link', { name: 'Audit events' }).first().click()
    await tab1.getByTestId('audit-events').waitFor()
    await tab1.getByLabel('Event type').selectOption('user_disabled')
    await tab1.getByRole('button', { name: 'Filter' }).click()
    await tab1.waitForFunction("location.hash.includes('type=user_disabled')")
    await tab1.getByTestId('audit-events').waitFor()
    const rows = tab1.locator('[data-testid=audit-events] tbody tr')
    t.equal(await rows.count(), 1)
    t.match(await rows.first().textContent(), /user_disabled/)
    await shot(tab1, 'audit-events')
    await tab1.getByLabel('Event type').selectOption('password_changed')
    await tab1.getByRole('button', { name: 'Filter' }).click()
    await tab1.getByText('No audit events match these filters.').waitFor()
    t.pass('empty state shown')
  })

  await t.test('the audit log names users and actors by their addresses and shows details as fields', async (t) => {
    await tab1.getByLabel('Event type').selectOption('user_disabled')
    await tab1.getByRole('button', { name: 'Filter' }).click()
    const table = tab1.getByTestId('audit-events')
    await table.waitFor()
    const row = table.locator('tbody tr').first()
    const cells = await cellsByHeader(table, row)
    t.equal(cells.User, targetEmail, 'the user by address')
    t.equal(cells.Actor, adminEmail, 'the actor by address')
    t.equal(await row.getByRole('link', { name: targetEmail }).getAttribute('href'), `#/users/${targetId}`, 'linked to the user page')
    t.equal(await row.getByRole('link', { name: adminEmail }).getAttribute('href'), `#/users/${adminId}`)
    t.notOk(Object.values(cells).some((text) => text.includes(targetId.slice(0, 8)) || text.includes(adminId.slice(0, 8))), 'no id prefix anywhere')
    const details = row.locator('dl.details')
    const terms = await details.locator('dt').allTextContents()
    const values = await details.locator('dd').allTextContents()
    const event = await app.db.auditEvent.findFirstOrThrow({ where: { userId: targetId, type: 'user_disabled' } })
    const stored = event.details as { revokedSessions: number; voidedLinks: number }
    t.same(
      Object.fromEntries(terms.map((term, i) => [term, values[i]])),
      { 'revoked sessions': String(stored.revokedSessions), 'voided links': String(stored.voidedLinks) },
      'details: each field named in words, with its value'
    )
    t.equal(stored.revokedSessions, 2, 'the two sessions the target still had')
    t.notMatch(cells.Details, /[{}"]/, 'not raw JSON')
    await shot(tab1, 'audit-emails')
  })

  await t.test('filter the audit log by email; the user page links to their events', async (t) => {
    await tab1.getByLabel('Event type').selectOption('')
    await tab1.getByLabel('User email').fill(targetEmail.toUpperCase())
    await tab1.getByRole('button', { name: 'Filter' }).click()
    const table = tab1.getByTestId('audit-events')
    const expected = await app.db.auditEvent.count({ where: { userId: targetId } })
    t.ok(expected > 3 && expected <= 25, `the target's events fit one page (${expected})`)
    await until('the filtered events', async () => String(await tab1.evaluate('location.hash')).includes('email=') && (await table.locator('tbody tr').count()) === expected)
    const users = await table.locator('tbody tr td:nth-child(3)').allTextContents()
    t.equal(users.length, expected, 'every event of the user')
    t.ok(users.every((text) => text === targetEmail), 'and only theirs')
    await shot(tab1, 'audit-by-email')

    await tab1.getByLabel('User email').fill(`nobody-${stamp}@e2e.test`)
    await tab1.getByRole('button', { name: 'Filter' }).click()
    await tab1.getByText('No audit events match these filters.').waitFor()
    t.pass('an address no one has: none')

    await tab1.goto(`${origin}/dashboard/#/users/${targetId}`)
    await tab1.getByTestId('user').waitFor()
    await tab1.locator('main').getByRole('link', { name: 'Audit events' }).click()
    await table.waitFor()
    t.equal(await tab1.getByLabel('User email').inputValue(), targetEmail, "the user page's link fills in their address")
    t.equal(await table.locator('tbody tr').count(), expected)
  })

  await t.test('an unknown user shows one "not found", without Retry', async (t) => {
    const unknown = '00000000-0000-4000-8000-000000000000'
    await tab1.goto(`${origin}/dashboard/#/users/${unknown}`)
    await tab1.getByTestId('user-not-found').waitFor()
    // Whatever else would load has had its chance to fail too.
    await loaded(tab1)
    t.equal(await tab1.getByRole('alert').count(), 1, 'one error')
    t.match(await tab1.getByRole('alert').textContent(), `No user has the id ${unknown}`)
    t.equal(await tab1.getByRole('button', { name: 'Retry' }).count(), 0, 'no Retry: asking again answers the same')
    t.equal(await tab1.getByRole('heading', { name: 'Sessions' }).count(), 0, 'no sessions asked for')
    await shot(tab1, 'user-not-found')
    await tab1.getByRole('link', { name: '← Users' }).click()
    await tab1.getByTestId('users').waitFor()
  })

  await t.test('the admin API keys: create (shown once) and revoke', async (t) => {
    await tab1.getByRole('link', { name: 'API keys' }).click()
    await tab1.getByText('You have no API keys.').waitFor()
    await tab1.getByLabel('Key name').fill('ci key')
    await tab1.getByRole('button', { name: 'Create key' }).click()
    const shown = await tab1.getByTestId('created-key').locator('code').textContent()
    t.match(shown, /\S{20,}/, 'the key is shown')
    await tab1.getByTestId('api-keys').waitFor()
    await shot(tab1, 'api-keys')
    const me = await api('GET', '/users/me', undefined, { 'x-api-key': shown! })
    t.equal(me.status, 200, 'the shown key works')
    await tab1.getByRole('button', { name: 'Done' }).click()
    t.equal(await tab1.getByTestId('created-key').count(), 0, 'and is not shown again')
    await tab1.getByRole('button', { name: 'Revoke key ci key' }).click()
    await tab1.getByText('You have no API keys.').waitFor()
    t.equal((await api('GET', '/users/me', undefined, { 'x-api-key': shown! })).status, 401, 'revoked')
  })

  await t.test('the API keys page pages: 101 keys (expired ones are listed, not counted) in two pages', async (t) => {
    const bulk = Array.from({ length: 101 }, (_, i) => ({
      userId: adminId,
      name: `bulk ${String(i).padStart(3, '0')}`,
      prefix: 'tak_bulk0000',
      keyHash: randomBytes(32),
      scopes: ['profile'],
      expiresAt: new Date(Date.now() - 1000),
      createdAt: new Date(Date.now() - 60_000 + i),
    }))
    await app.db.apiKey.createMany({ data: bulk })
    t.teardown(() => app.db.apiKey.updateMany({ where: { userId: adminId, revokedAt: null }, data: { revokedAt: new Date() } }))
    // Away and back, so the page loads the list again.
    await tab1.getByRole('link', { name: 'Users' }).click()
    await tab1.getByTestId('users').waitFor()
    await tab1.getByRole('link', { name: 'API keys' }).click()
    await tab1.getByTestId('api-keys').waitFor()
    t.equal(await tab1.getByTestId('api-keys').locator('tbody tr').count(), 100, 'the first page: 100 keys')
    t.equal(await tab1.getByRole('link', { name: 'First page' }).count(), 0)
    await tab1.getByRole('link', { name: 'Next page' }).click()
    await tab1.getByRole('link', { name: 'First page' }).waitFor()
    t.same(await tab1.getByTestId('api-keys').locator('tbody tr td:first-child').allTextContents(), ['bulk 000'], 'the second page: the oldest key')
    t.equal(await tab1.getByRole('link', { name: 'Next page' }).count(), 0, 'and no further page')
    await shot(tab1, 'api-keys-page-2')
  })

  /** Whether the page scrolls sideways: the document wider than the window. */
  const overflow = (page: import('playwright-core').Page) =>
    page.evaluate('({ document: document.documentElement.scrollWidth, body: document.body.scrollWidth, window: document.documentElement.clientWidth })') as Promise<{ document: number; body: number; window: number }>

  await t.test('every page is usable 420 px wide: the page never scrolls sideways, a table scrolls in its own box', async (t) => {
    await tab1.setViewportSize({ width: 420, height: 800 })
    t.teardown(() => tab1.setViewportSize({ width: 1280, height: 800 }))
    const pages: [string, string, string][] = [
      ['users', '#/users', 'Users'],
      ['user', `#/users/${adminId}`, 'Sessions'],
      ['audit', '#/audit', 'Audit events'],
      ['audit-by-email', `#/audit?email=${encodeURIComponent(targetEmail)}`, 'Audit events'],
      ['api-keys', '#/keys', 'Your API keys'],
      ['mailbox', '#/mailbox', 'Mailbox'],
      ['security', '#/security', 'Security'],
      ['passkeys', '#/passkeys', 'Your passkeys'],
      ['user-not-found', '#/users/00000000-0000-4000-8000-000000000000', 'No such user'],
    ]
    for (const [name, hash, heading] of pages) {
      await tab1.goto(`${origin}/dashboard/${hash}`)
      await tab1.getByRole('heading', { name: heading }).first().waitFor()
      await loaded(tab1)
      const widths = await overflow(tab1)
      t.ok(widths.document <= widths.window && widths.body <= widths.window, `${name}: no sideways scroll of the page (${JSON.stringify(widths)})`)
      await shot(tab1, `narrow-${name}`)
    }
    await tab1.goto(`${origin}/dashboard/#/users`)
    await tab1.getByRole('region', { name: 'Users' }).waitFor()
    const scroll = (await tab1.evaluate(
      "(() => { const box = document.querySelector('[data-testid=users]').closest('[role=region]'); return { scroll: box.scrollWidth, client: box.clientWidth } })()"
    )) as { scroll: number; client: number }
    t.ok(scroll.scroll > scroll.client && scroll.client <= 420, `the users table scrolls inside its box (${JSON.stringify(scroll)})`)
    const signOut = await tab1.getByRole('button', { name: 'Sign out' }).boundingBox()
    t.ok(signOut && signOut.x >= 0 && signOut.x + signOut.width <= 420, 'the header wraps: Sign out is on screen')
  })

  await t.test('a reload keeps the admin signed in through the cookie', async (t) => {
    await tab1.goto(`${origin}/dashboard/#/users`)
    await tab1.reload()
    await tab1.getByTestId('users').waitFor()
    t.equal(await tab1.getByRole('button', { name: 'Sign in', exact: true }).count(), 0)
  })

  const tab2 = watch(await context.newPage())

  await t.test('two tabs refresh at the same moment and both stay signed in', async (t) => {
    await tab2.goto(`${origin}/dashboard/#/users`)
    await tab2.getByTestId('users').waitFor()
    // "The same moment", made deterministic: a third holder takes the
    // dashboard's refresh lock, both tabs ask for a refresh (four calls in
    // all), and the lock is released once both tabs are queued on it.
    const lock = 'token-auth:same-origin:admin:refresh'
    await tab1.evaluate(`void navigator.locks.request(${JSON.stringify(lock)}, () => new Promise((release) => { globalThis.releaseRefreshLock = release }))`)
    await tab1.waitForFunction('typeof globalThis.releaseRefreshLock === "function"')
    const before = tokenRequests()
    // Two calls per tab, made in one evaluation so that both are in flight
    // together (two separate evaluations may reach the page after the first
    // refresh is over, and then rightly refresh again).
    const refreshTwice = (page: import('playwright-core').Page) =>
      page.evaluate(
        'Promise.all([0, 1].map(() => globalThis.tokenAuthDashboard.client.refresh().then((token) => token.length > 0)))'
      ) as Promise<boolean[]>
    const results = Promise.all([refreshTwice(tab1), refreshTwice(tab2)]).then((pairs) => pairs.flat())
    // Both tabs queued, told apart by clientId: two calls of one tab would also make two pending requests.
    await tab1.waitForFunction(
      `navigator.locks.query().then((state) => new Set(state.pending.filter((l) => l.name === ${JSON.stringify(lock)}).map((l) => l.clientId)).size === 2)`
    )
    await tab1.evaluate('globalThis.releaseRefreshLock()')
    t.same(await results, [true, true, true, true])
    const refreshes = tokenRequests() - before
    t.equal(refreshes, 1, 'one refresh request for both tabs')
    t.comment(`refresh requests for two tabs refreshing at once: ${refreshes}`)
    for (const page of [tab1, tab2]) {
      await page.getByRole('link', { name: 'Audit events' }).first().click()
      await page.getByTestId('audit-events').waitFor()
      await page.getByRole('link', { name: 'Users' }).click()
      await page.getByTestId('users').waitFor()
    }
    t.pass('both tabs still signed in')
  })

  await t.test('logout in one tab signs the other out', async (t) => {
    await tab1.getByRole('button', { name: 'Sign out' }).click()
    await tab1.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    await tab2.getByTestId('login-notice').waitFor()
    t.match(await tab2.getByTestId('login-notice').textContent(), /signed out in another tab/)
    await shot(tab2, 'signed-out-elsewhere')
    await tab2.reload()
    await tab2.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    t.pass('a reload does not sign back in: the cookie is gone')
  })

  await t.test('a session that ends sends the admin back to login with a message', async (t) => {
    await login(tab1, adminEmail)
    await tab1.getByTestId('users').waitFor()
    // Revoke the admin's own sessions behind the dashboard's back.
    await app.administration.revokeSessions({ actorId: adminId, userId: adminId })
    await tab1.getByRole('link', { name: 'Audit events' }).first().click()
    await tab1.getByTestId('login-notice').waitFor()
    t.match(await tab1.getByTestId('login-notice').textContent(), /session has expired/)
    await shot(tab1, 'session-expired')
  })

  await t.test('the sign-in page is usable 420 px wide', async (t) => {
    await tab1.setViewportSize({ width: 420, height: 800 })
    await tab1.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    const widths = await overflow(tab1)
    t.ok(widths.document <= widths.window && widths.body <= widths.window, `no sideways scroll (${JSON.stringify(widths)})`)
    const button = await tab1.getByRole('button', { name: 'Sign in', exact: true }).boundingBox()
    t.ok(button && button.x >= 0 && button.x + button.width <= 420, 'the sign-in button is on screen')
    await shot(tab1, 'narrow-login')
  })

  t.same(problems, [], 'no page errors or CSP violations')
}
