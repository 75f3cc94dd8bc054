import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { CDPSession, Page } from 'playwright-core'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { buildTestApp, freePort, type TestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, watchPage } from '../helpers/browser.js'
import { registerPasskey, SoftAuthenticator } from '../helpers/webauthn.js'

/**
 * Passkeys end to end in headless Chromium (Debian's, driven by
 * playwright-core) with the DevTools protocol's virtual authenticator
 * (WebAuthn domain: a CTAP2 platform authenticator with resident keys and
 * user verification): an admin whose address is unverified is told to
 * confirm it first, confirms it through the development mailbox, registers
 * a passkey on the dashboard's passkeys page; setting up an authenticator
 * app beside it then asks for a step-up with the passkey and goes on; the
 * admin signs in with it (a multi-factor session: amr and acr in the access
 * token), renames it, and signs in with the password, the passkey as the
 * second step; a page of the same RP ID served from an origin outside
 * WEBAUTHN_ORIGINS is refused; a cloned credential (exported with
 * WebAuthn.getCredentials, its original left to advance the counter, then
 * imported into a second authenticator with its old counter) is refused and
 * audited; a user's password reset mails a notice whose one-click link
 * removes the passkey it lists; deleting the passkey ends the session it
 * signed in to.
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
  async function submitPassword () {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }
  /** Signs in with the password, and with the passkey when the second step asks for it. */
  async function passwordLogin (options: { passkeyStep?: boolean } = {}) {
    await submitPassword()
    if (options.passkeyStep) await page.getByRole('button', { name: 'Use my passkey' }).click()
    await signedIn(page)
  }
  /** Opens the development mailbox and follows the link of the newest message to `to` whose subject matches. */
  async function followMailboxLink (to: string, subject: RegExp) {
    await page.goto(`${origin}/dashboard/#/mailbox`)
    const row = page.locator(`[data-testid=outbox] tr[data-recipient="${to}"]`).filter({ hasText: subject }).first()
    await row.locator('summary').click()
    await row.locator('pre.mail a').first().click()
  }
  async function signOut () {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor()
  }
  const heldClaims = async (target: Page) =>
    target.evaluate(() => (globalThis as unknown as { tokenAuthDashboard: { client: { claims: Record<string, unknown> | null } } }).tokenAuthDashboard.client.claims)

  let exported: VirtualCredential

  await t.test('an unverified address adds no passkey: the page says so and sends a new link', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    await passwordLogin()
    await page.getByRole('link', { name: 'Passkeys' }).click()
    await page.getByText('You have no passkeys.').waitFor()
    await page.getByLabel('Passkey name').fill('E2E laptop')
    await page.getByRole('button', { name: 'Add a passkey' }).click()
    const refusal = page.getByTestId('email-verification-required')
    await refusal.waitFor()
    t.match(await refusal.getByRole('alert').textContent(), /Confirm your email address first/, 'said as an alert')
    await shot('passkey-unverified')
    const { credentials } = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: genuine })) as unknown as { credentials: VirtualCredential[] }
    t.equal(credentials.length, 0, 'the authenticator was not asked')
    await refusal.getByRole('button', { name: 'Email me a new confirmation link' }).click()
    await refusal.getByRole('status').waitFor()
    t.equal(await app.db.emailOutbox.count({ where: { recipient: email, template: 'email_verification' } }), 2, 'a second verification message')
    // An API key is refused the same way, and said the same way.
    await page.getByRole('link', { name: 'API keys' }).click()
    await page.getByLabel('Key name').fill('E2E key')
    await page.getByRole('button', { name: 'Create key' }).click()
    await page.getByTestId('email-verification-required').waitFor()
    t.match(await page.getByTestId('email-verification-required').textContent(), /An API key gets into your account without your password/)
    t.equal(await app.db.apiKey.count({ where: { userId: adminId } }), 0, 'no key')

    await followMailboxLink(email, /confirm your email address/)
    await page.getByRole('button', { name: 'Confirm my address' }).click()
    await page.getByTestId('verify-done').waitFor()
    t.ok((await app.db.user.findUniqueOrThrow({ where: { id: adminId } })).emailVerifiedAt, 'verified')
  })

  await t.test('register a passkey on the passkeys page', async (t) => {
    await page.goto(`${origin}/dashboard/#/passkeys`)
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

  await t.test('an authenticator app beside the passkey asks for a step-up with the passkey, then goes on', async (t) => {
    // This session signed in with the password alone, before the passkey existed.
    t.not((await heldClaims(page))?.acr, 'urn:token-auth:acr:mfa')
    await page.getByRole('link', { name: 'Security' }).click()
    await page.getByTestId('passkey-factor').waitFor()
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
    const dialog = page.getByRole('dialog', { name: 'Confirm it is you' })
    await dialog.waitFor()
    t.match(await dialog.textContent(), /second factor/, 'the dialog says a second factor is needed')
    const select = dialog.getByLabel('Confirm with')
    await select.waitFor()
    t.same(await select.locator('option').allTextContents(), ['a passkey'], 'the admin\'s one factor is offered, not the password')
    await shot('passkey-step-up')
    t.equal(await app.db.totpFactor.count({ where: { userId: adminId } }), 0, 'nothing was set up before the step-up')
    await dialog.getByRole('button', { name: 'Confirm' }).click()
    await page.getByTestId('totp-secret').waitFor()
    t.equal(await app.db.totpFactor.count({ where: { userId: adminId } }), 1, 'the set-up went on after the step-up')
    t.equal((await heldClaims(page))?.acr, 'urn:token-auth:acr:mfa', 'the session proved its factor')
    const steppedUp = await app.db.auditEvent.findFirst({ where: { type: 'stepped_up', userId: adminId } })
    t.ok(steppedUp, 'a step-up, audited')
    // The set-up is left unconfirmed: the passkey stays the only factor.
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

  await t.test('a password sign-in finishes with the passkey as its second step', async (t) => {
    await submitPassword()
    const step = page.getByRole('region', { name: 'Second step' })
    await step.waitFor()
    t.equal(await step.getByLabel('Authentication code').count(), 0, 'no code is asked of an account whose factor is a passkey')
    t.ok(await step.getByRole('button', { name: 'Use my passkey' }).evaluate((button) => button === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement), 'focus is on the passkey button')
    await shot('passkey-second-step')
    await step.getByRole('button', { name: 'Use my passkey' }).click()
    await signedIn(page)
    const claims = (await heldClaims(page))!
    t.equal(claims.sub, adminId)
    t.equal(claims.acr, 'urn:token-auth:acr:mfa')
    t.ok((claims.amr as string[]).includes('pwd'), `the password (${String(claims.amr)})`)
    t.ok((claims.amr as string[]).includes('hwk') || (claims.amr as string[]).includes('swk'), 'and a key')
    const passkey = await app.db.passkey.findFirstOrThrow({ where: { userId: adminId } })
    t.equal((await app.db.session.findUniqueOrThrow({ where: { id: claims.sid as string } })).passkeyId, passkey.id, 'the session knows its passkey')
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

  let current: VirtualCredential
  await t.test('a cloned credential with an old counter is refused and audited', async (t) => {
    // The genuine credential as it is now, to bring it back afterwards.
    current = ((await cdp.send('WebAuthn.getCredentials', { authenticatorId: genuine })) as unknown as { credentials: VirtualCredential[] }).credentials[0]!
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
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: clone })
    await cdp.send('WebAuthn.addCredential', { authenticatorId: await addAuthenticator(cdp), credential: current as never })
  })

  await t.test('a password reset\'s notice lists a passkey added since the address was confirmed; its link removes it', async (t) => {
    // Another user, verified, with a passkey (a software authenticator of this origin); the admin reads the mailbox.
    const userEmail = `passkey-user-${Date.now()}@e2e.test`
    const user = (await app.inject({ method: 'POST', url: '/auth/signup', payload: { email: userEmail, password: PASSWORD, client_id: 'mobile' } })).json()
    const planted = await registerPasskey(app, user.access_token as string, new SoftAuthenticator(origin), 'Unknown phone')
    t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: userEmail } })).statusCode, 202)
    await app.recovery.settled()

    await passwordLogin({ passkeyStep: true })
    await followMailboxLink(userEmail, /reset your password/)
    await page.locator('input[name=new-password]').fill('a newly chosen passphrase')
    await page.locator('input[name=repeat-password]').fill('a newly chosen passphrase')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByTestId('reset-done').waitFor()

    await followMailboxLink(userEmail, /your password was changed/)
    const removal = page.getByRole('button', { name: 'Remove them' })
    await removal.waitFor()
    t.notMatch(await page.evaluate('location.hash'), /token/, 'the token left the address bar')
    t.match(await page.locator('main').textContent(), /the passkeys and API keys listed in the email/i, 'the page says what goes')
    t.equal(await app.db.passkey.count({ where: { id: planted.id } }), 1, 'opening the page removed nothing')
    t.equal(await app.db.accountToken.count({ where: { userId: user.user.id as string, purpose: 'credential_removal', usedAt: null } }), 1, 'and spent nothing')
    await shot('remove-credentials')
    await removal.click()
    const done = page.getByTestId('removal-done')
    await done.waitFor()
    t.match(await done.textContent(), /1 passkey and 0 API keys/)
    t.equal(await app.db.passkey.count({ where: { id: planted.id } }), 0, 'the listed passkey is gone')
    t.equal(await app.db.passkey.count({ where: { userId: adminId } }), 1, 'the admin\'s own is not touched')
    await shot('remove-credentials-done')

    await followMailboxLink(userEmail, /your password was changed/)
    await page.getByRole('button', { name: 'Remove them' }).click()
    await page.getByTestId('removal-error').waitFor()
    t.match(await page.getByTestId('removal-error').textContent(), /sign in and remove it/, 'a spent link says what to do instead')
  })

  await t.test('delete the passkey: it signs in no more, and the session it signed in to ends', async (t) => {
    await page.goto(`${origin}/dashboard/#/passkeys`)
    await page.getByRole('button', { name: 'Delete passkey Work laptop' }).click()
    await page.getByTestId('login-notice').waitFor()
    t.match(await page.getByTestId('login-notice').textContent(), /You deleted the passkey "Work laptop", which this session was signed in with/)
    t.equal(await app.db.passkey.count({ where: { userId: adminId } }), 0)
    t.ok(await app.db.auditEvent.findFirst({ where: { type: 'passkey_deleted', userId: adminId } }), 'audited')
    await passwordLogin()
    t.not((await heldClaims(page))?.acr, 'urn:token-auth:acr:mfa', 'the password alone signs in again')
  })

  t.same(problems, [], 'no CSP violation or page error')
}
