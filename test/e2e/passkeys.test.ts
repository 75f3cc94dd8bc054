import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { CDPSession, Page } from 'playwright-core'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { buildTestApp, freePort, type TestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * Passkeys end to end in headless Chromium (Debian's, driven by
 * playwright-core) with the DevTools protocol's virtual authenticator
 * (WebAuthn domain: a CTAP2 platform authenticator with resident keys and
 * user verification): an admin registers a passkey on the dashboard's
 * passkeys page, signs in with it (a multi-factor session: amr and acr in
 * the access token), renames and deletes it; a page of the same RP ID
 * served from an origin outside WEBAUTHN_ORIGINS is refused; and a cloned
 * credential (exported with WebAuthn.getCredentials, its original left to
 * advance the counter, then imported into a second authenticator with its
 * old counter) is refused and audited.
 *
 * WebAuthn needs a secure context and an RP ID that is a domain:
 * http://localhost is both, so the service's ISSUER is
 * http://localhost:<port> (listening on 127.0.0.1) and WEBAUTHN_RP_ID=localhost.
 */

const SCREENSHOTS = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
const PASSWORD = 'a fine passphrase'

await browserTest('passkeys in headless Chromium with a virtual authenticator', run)

/** The service listening on 127.0.0.1 as http://localhost:<port>; `database` shares another instance's. */
async function listenOnLocalhost (env: (origin: string) => Record<string, string>, database?: TestApp['database']): Promise<TestApp & { origin: string }> {
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const origin = `http://localhost:${port}`
    const server = await buildTestApp({ ISSUER: origin, COOKIE_SECURE: 'false', CORS_ORIGINS: '', WEBAUTHN_RP_ID: 'localhost', ...env(origin) }, database ? { database } : {})
    try {
      await server.app.listen({ port, host: '127.0.0.1' })
      return { ...server, origin }
    } catch (error) {
      lastError = error
      await server.close()
      if ((error as { code?: string }).code !== 'EADDRINUSE') throw error
    }
  }
  throw lastError
}

interface VirtualCredential {
  credentialId: string
  signCount: number
  [field: string]: unknown
}

async function addAuthenticator (cdp: CDPSession): Promise<string> {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return authenticatorId
}

async function run (t: Test) {
  const server = await listenOnLocalhost(() => ({}))
  t.teardown(server.close)
  const { app, origin } = server
  t.same(server.config.webauthn.origins, [origin], 'WEBAUTHN_ORIGINS defaults to the issuer\'s origin')

  const email = `passkey-admin-${Date.now()}@e2e.test`
  const signup = await app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
  const adminId = signup.json().user.id as string
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })

  await mkdir(SCREENSHOTS, { recursive: true })
  const context = await launchBrowser(t, 'passkeys')
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  watchPage(page, problems)
  page.on('dialog', (dialog) => {
    dialog.accept().catch(() => {})
  })
  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })

  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const genuine = await addAuthenticator(cdp)

  const signedIn = (target: Page) => target.getByRole('button', { name: 'Sign out' }).waitFor()
  async function passwordLogin () {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await signedIn(page)
  }
  async function signOut () {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor()
  }
  const heldClaims = async (target: Page) =>
    target.evaluate(() => (globalThis as unknown as { tokenAuthDashboard: { client: { claims: Record<string, unknown> | null } } }).tokenAuthDashboard.client.claims)

  let exported: VirtualCredential

  await t.test('register a passkey on the passkeys page', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    await passwordLogin()
    await page.getByRole('link', { name: 'Passkeys' }).click()
    await page.getByText('You have no passkeys.').waitFor()
    await page.getByLabel('Passkey name').fill('E2E laptop')
    await page.getByRole('button', { name: 'Add a passkey' }).click()
    await page.getByTestId('passkey-added').waitFor()
    await page.locator('[data-testid=passkeys] tbody tr').first().waitFor()
    t.match(await page.getByTestId('passkeys').textContent(), /E2E laptop/)
    await shot('passkeys')
    const stored = await app.db.passkey.findMany({ where: { userId: adminId } })
    t.equal(stored.length, 1, 'one passkey stored')
    t.equal(stored[0]!.name, 'E2E laptop')
    t.same(stored[0]!.transports, ['internal'])
    const { credentials } = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: genuine })) as unknown as { credentials: VirtualCredential[] }
    t.equal(credentials.length, 1, 'the authenticator holds one credential')
    t.equal(credentials[0]!.isResidentCredential, true, 'discoverable')
    t.equal(credentials[0]!.rpId, 'localhost')
    t.equal(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'), stored[0]!.credentialId, 'the credential the service stored')
    exported = credentials[0]!
  })

  await t.test('sign in with the passkey: a multi-factor session', async (t) => {
    await signOut()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await signedIn(page)
    const claims = (await heldClaims(page))!
    t.equal(claims.sub, adminId)
    t.ok((claims.amr as string[]).includes('hwk') || (claims.amr as string[]).includes('swk'), `a key (${String(claims.amr)})`)
    t.ok((claims.amr as string[]).includes('user'), 'user verification')
    t.ok((claims.amr as string[]).includes('mfa'), 'two factors')
    t.notOk((claims.amr as string[]).includes('pwd'), 'no password')
    t.equal(claims.acr, 'urn:token-auth:acr:mfa')
    const session = await app.db.session.findUniqueOrThrow({ where: { id: claims.sid as string } })
    t.same(session.amr, claims.amr, 'the session holds the same facts')
    const passkey = await app.db.passkey.findFirstOrThrow({ where: { userId: adminId } })
    t.ok(passkey.lastUsedAt, 'last used is recorded')
    t.ok(passkey.counter > BigInt(exported.signCount), `the counter advanced (${exported.signCount} -> ${passkey.counter})`)
    // Once more, so that the stored counter is past what the clone will show; this time through the
    // SDK's own JSON conversions, as in a browser without WebAuthn Level 3's parse*FromJSON and toJSON().
    await signOut()
    await page.evaluate(() => {
      const credential = (globalThis as unknown as { PublicKeyCredential: Record<string, unknown> & { prototype: Record<string, unknown> } }).PublicKeyCredential
      credential.parseRequestOptionsFromJSON = undefined
      credential.parseCreationOptionsFromJSON = undefined
      credential.prototype.toJSON = undefined
    })
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await signedIn(page)
    t.equal((await heldClaims(page))?.acr, 'urn:token-auth:acr:mfa', 'signed in through the fallback conversions')
    await shot('passkey-signed-in')
  })

  await t.test('rename the passkey', async (t) => {
    await page.goto(`${origin}/dashboard/#/passkeys`)
    await page.getByRole('button', { name: 'Rename passkey E2E laptop' }).click()
    await page.getByLabel('New name').fill('Work laptop')
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('cell', { name: 'Work laptop', exact: true }).waitFor()
    t.equal((await app.db.passkey.findFirstOrThrow({ where: { userId: adminId } })).name, 'Work laptop')
    await signOut()
  })

  await t.test('an origin outside WEBAUTHN_ORIGINS is refused, though the RP ID matches', async (t) => {
    // Another instance on the same database, its dashboard on another port of localhost,
    // configured to accept only the first instance's origin.
    const other = await listenOnLocalhost(() => ({ WEBAUTHN_ORIGINS: origin }), server.database)
    t.teardown(other.close)
    await page.goto(`${other.origin}/dashboard/`)
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.getByTestId('passkey-error').waitFor()
    t.match(await page.getByTestId('passkey-error').textContent(), /not accepted/)
    const refusal = await app.db.auditEvent.findFirst({ where: { type: 'login_failed', userId: adminId, details: { path: ['reason'], equals: 'passkey_verification_failed' } }, orderBy: { id: 'desc' } })
    t.match((refusal?.details as { message?: string } | undefined)?.message, new RegExp(`origin "${other.origin}"`), 'refused for its origin')
    await shot('passkey-wrong-origin')
  })

  await t.test('a cloned credential with an old counter is refused and audited', async (t) => {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: genuine })
    const clone = await addAuthenticator(cdp)
    await cdp.send('WebAuthn.addCredential', { authenticatorId: clone, credential: exported as never })
    await page.goto(`${origin}/dashboard/`)
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await page.getByTestId('passkey-error').waitFor()
    t.match(await page.getByTestId('passkey-error').textContent(), /not accepted/)
    const alarm = await app.db.auditEvent.findFirst({ where: { type: 'passkey_counter_regressed', userId: adminId } })
    t.ok(alarm, 'audited as a possible clone')
    const passkey = await app.db.passkey.findFirstOrThrow({ where: { userId: adminId } })
    t.match(alarm?.details, { passkeyId: passkey.id, storedCounter: String(passkey.counter) })
    t.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0, 'not signed in')
    await shot('passkey-clone-refused')
  })

  await t.test('delete the passkey; it signs in no more', async (t) => {
    await passwordLogin()
    await page.goto(`${origin}/dashboard/#/passkeys`)
    await page.getByRole('button', { name: 'Delete passkey Work laptop' }).click()
    await page.getByText('You have no passkeys.').waitFor()
    t.equal(await app.db.passkey.count({ where: { userId: adminId } }), 0)
    t.ok(await app.db.auditEvent.findFirst({ where: { type: 'passkey_deleted', userId: adminId } }), 'audited')
  })

  t.same(problems, [], 'no CSP violation or page error')
}
