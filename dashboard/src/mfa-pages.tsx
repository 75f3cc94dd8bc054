import { useEffect, useRef, useState } from 'preact/hooks'
import { InvalidCredentialsError, type MfaRequiredError, type SecondFactorList, type TotpEnrolment } from '../../src/client/index.js'
import { client } from './api.js'
import { describePasskeyError } from './passkey-pages.js'
import { ActionButton, describeError, ErrorBox, LoadView, useLoad, when } from './ui.js'

/**
 * Second factors in the dashboard: the second step of a sign-in, the
 * signed-in admin's Security page (authenticator set-up with its QR code,
 * recovery codes shown once, removal, new codes), and an admin's reset of a
 * user's factors.
 */

/**
 * Whether the service keeps this admin to enrolling a second factor
 * (REQUIRE_MFA_FOR_ADMINS): the admin API answers RFC 9470's
 * insufficient_user_authentication naming the acr a second factor gives.
 */
export async function mustEnrolSecondFactor (): Promise<boolean> {
  const response = await client.fetch('/admin/users?limit=1')
  if (response.status !== 401) return false
  const challenge = response.headers.get('www-authenticate') ?? ''
  return challenge.includes('insufficient_user_authentication') && challenge.includes('acr_values=')
}

/**
 * The second step of a sign-in, with what the account has (the service's
 * `factors`): its passkey, a code from the authenticator app, or a recovery
 * code.
 */
export function SecondStepForm ({ challenge, onDone, onRestart }: { challenge: MfaRequiredError; onDone: () => void; onRestart: () => void }) {
  const withPasskey = challenge.factors.includes('passkey')
  const withCode = challenge.factors.includes('otp') || challenge.factors.includes('recovery_code')
  const [useRecovery, setUseRecovery] = useState(!challenge.factors.includes('otp') && challenge.factors.includes('recovery_code'))
  const [code, setCode] = useState('')
  const [busy, setBusy] = useState<'code' | 'passkey' | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [dead, setDead] = useState(false)
  const first = useRef<HTMLElement | null>(null)
  // The sign-in form was just hidden: bring focus (and a screen reader) to what replaced it.
  useEffect(() => first.current?.focus(), [])

  async function attempt (kind: 'code' | 'passkey', run: () => Promise<unknown>) {
    setBusy(kind)
    setError(null)
    try {
      await run()
      onDone()
    } catch (e) {
      const message = describeError(e)
      // The service says "sign in again" once the step itself is spent (expired, or too many failures).
      const spent = /sign in again/i.test(message)
      if (spent) setDead(true)
      if (kind === 'passkey') setError(spent ? message : describePasskeyError(e))
      else setError(e instanceof InvalidCredentialsError && !spent ? 'That code is wrong or was already used.' : message)
      setCode('')
    } finally {
      setBusy(null)
    }
  }
  const intro = withPasskey && withCode
    ? 'Confirm with your passkey, or enter a code.'
    : withPasskey
      ? 'Confirm with your passkey: your browser will ask you to choose it and unlock it.'
      : useRecovery ? 'Enter one of your recovery codes.' : 'Enter the 6-digit code your authenticator app shows.'
  return (
    <section class='second-step' aria-labelledby='second-step-title'>
      <h2 id='second-step-title'>Second step</h2>
      <p>This account has a second factor. {intro}</p>
      {withPasskey && (
        <button
          type='button'
          ref={(element) => { if (element && !first.current) first.current = element }}
          disabled={busy !== null || dead}
          onClick={() => attempt('passkey', () => challenge.completeWithPasskey())}
        >
          {busy === 'passkey' ? 'Waiting for your passkey…' : 'Use my passkey'}
        </button>
      )}
      {withCode && (
        <form onSubmit={(event) => { event.preventDefault(); void attempt('code', () => challenge.complete(useRecovery ? { recoveryCode: code.trim() } : { otp: code.trim() })) }} aria-label='Second step with a code'>
          <label>
            {useRecovery ? 'Recovery code' : 'Authentication code'}
            <input
              ref={(element) => { if (element && !first.current) first.current = element }}
              name={useRecovery ? 'recovery_code' : 'otp'}
              autocomplete='one-time-code'
              inputMode={useRecovery ? 'text' : 'numeric'}
              required
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
          <button type='submit' disabled={busy !== null || dead}>
            {busy === 'code' ? 'Checking…' : 'Verify'}
          </button>
          {challenge.factors.includes('recovery_code') && challenge.factors.includes('otp') && (
            <button type='button' class='link' onClick={() => { setUseRecovery(!useRecovery); setCode('') }}>
              {useRecovery ? 'Use the authenticator app instead' : 'Use a recovery code instead'}
            </button>
          )}
        </form>
      )}
      {error && (
        <p class='state error' role='alert' data-testid='second-step-error'>
          {error}
        </p>
      )}
      <button type='button' onClick={onRestart}>
        Start over
      </button>
    </section>
  )
}

/** Recovery codes, shown this once, with a copy button. */
function RecoveryCodes ({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [copied, setCopied] = useState(false)
  return (
    <div class='created-key' role='status' data-testid='recovery-codes'>
      <p>
        Your recovery codes. Keep them somewhere safe: each signs you in once if you lose your authenticator, and they will not be shown again.
      </p>
      <ul class='recovery-codes'>
        {codes.map((code) => (
          <li key={code}>
            <code class='secret'>{code}</code>
          </li>
        ))}
      </ul>
      <button
        type='button'
        onClick={async () => {
          await navigator.clipboard.writeText(codes.join('\n'))
          setCopied(true)
        }}
      >
        {copied ? 'Copied' : 'Copy codes'}
      </button>
      <button type='button' onClick={onDone}>
        I have saved them
      </button>
    </div>
  )
}

/** Setting up the authenticator: the QR code and secret, then the first code. */
function TotpSetup ({ enrolment, onConfirmed }: { enrolment: TotpEnrolment; onConfirmed: (codes: string[]) => void }) {
  const [code, setCode] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <div class='totp-setup'>
      <p>Scan this QR code with your authenticator app, or type the secret into it.</p>
      <img src={enrolment.qrCode} alt='QR code of the authenticator secret' width={200} height={200} />
      <p>
        Secret: <code class='secret' data-testid='totp-secret'>{enrolment.secret}</code>
      </p>
      <form
        aria-label='Confirm the authenticator'
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setError(null)
          try {
            onConfirmed(await client.confirmTotp(code.trim()))
          } catch (err) {
            setError(err)
            setCode('')
          } finally {
            setBusy(false)
          }
        }}
      >
        <label>
          Code from the app
          <input name='code' autocomplete='one-time-code' inputMode='numeric' required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
        </label>
        <button type='submit' disabled={busy}>
          {busy ? 'Checking…' : 'Turn on'}
        </button>
      </form>
      {error !== null && <ErrorBox error={error} />}
    </div>
  )
}

/** The admin's passkeys, which are the second factor of a password sign-in too. */
function PasskeysAsFactor ({ count, forced }: { count: number; forced: boolean }) {
  return (
    <p data-testid='passkey-factor'>
      {count === 1 ? 'Your passkey is' : `Your ${count} passkeys are`} your second factor when you sign in with your password
      {forced ? '.' : <>{' '}(<a href='#/passkeys'>manage passkeys</a>).</>}
    </p>
  )
}

/**
 * The signed-in admin's second factors. `forced`: REQUIRE_MFA_FOR_ADMINS
 * keeps them here until they enrol; then they sign in again, with the code.
 */
export function SecurityPage ({ forced = false }: { forced?: boolean }) {
  const [load, reload] = useLoad<SecondFactorList & { passkeys: number }>(async () => {
    const [factors, passkeys] = await Promise.all([client.listFactors(), client.listPasskeys()])
    return { ...factors, passkeys: passkeys.length }
  }, 'factors')
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null)
  const [codes, setCodes] = useState<string[] | null>(null)
  const [proof, setProof] = useState('')
  return (
    <section>
      <h2>Security</h2>
      {forced && (
        <p class='notice' role='status' data-testid='must-enrol'>
          Administrators must sign in with a second factor. Set up an authenticator app, then sign in again.
        </p>
      )}
      {codes && (
        <RecoveryCodes
          codes={codes}
          onDone={async () => {
            setCodes(null)
            // The current session was opened without the new factor: a forced admin signs in again with it.
            if (forced) await client.logout().catch(() => undefined)
            else reload()
          }}
        />
      )}
      <LoadView load={load} what='second factors' retry={reload}>
        {(factors) =>
          factors.totp?.confirmed
            ? (
              <div>
                <p data-testid='totp-status'>
                  Authenticator app: on since {when(factors.totp.confirmedAt)}. Recovery codes left: {factors.recoveryCodes.remaining}.
                </p>
                {factors.passkeys > 0 && <PasskeysAsFactor count={factors.passkeys} forced={forced} />}
                {forced && (
                  <button type='button' onClick={() => client.logout().catch(() => undefined)}>
                    Sign in again with your code
                  </button>
                )}
                <ActionButton action={async () => setCodes(await client.regenerateRecoveryCodes())}>New recovery codes</ActionButton>
                <form
                  class='filters'
                  aria-label='Remove the authenticator'
                  onSubmit={(e) => e.preventDefault()}
                >
                  <label>
                    Current code or your password
                    <input name='proof' type='password' autocomplete='off' value={proof} onInput={(e) => setProof(e.currentTarget.value)} />
                  </label>
                  <ActionButton
                    class='danger'
                    confirm='Remove the authenticator app and its recovery codes?'
                    action={async () => {
                      const value = proof.trim()
                      await client.removeTotp(/^\d{6}$/.test(value.replace(/\s/g, '')) ? { code: value } : { password: proof })
                      setProof('')
                      reload()
                    }}
                  >
                    Remove authenticator
                  </ActionButton>
                </form>
              </div>
              )
            : enrolment
              ? (
                <TotpSetup
                  enrolment={enrolment}
                  onConfirmed={(recoveryCodes) => {
                    setEnrolment(null)
                    setCodes(recoveryCodes)
                    if (!forced) reload()
                  }}
                />
                )
              : (
                <div>
                  {factors.passkeys > 0 ? <PasskeysAsFactor count={factors.passkeys} forced={forced} /> : <p>No second factor yet.</p>}
                  <ActionButton action={async () => setEnrolment(await client.startTotpEnrolment())}>Set up an authenticator app</ActionButton>
                </div>
                )}
      </LoadView>
    </section>
  )
}

/** On a user's page: remove every second factor of the user (a lost device); the user is emailed. */
export function ResetSecondFactorsButton ({ userId, email }: { userId: string; email: string }) {
  const [done, setDone] = useState<Record<string, number> | null>(null)
  return (
    <>
      <ActionButton
        class='danger'
        confirm={`Remove every second factor of ${email}? They will sign in with the password alone until they set one up again.`}
        action={async () => {
          const answer = await client.request<{ removed: Record<string, number> }>(`/admin/users/${userId}/mfa/reset`, { method: 'POST' })
          setDone(answer.removed)
        }}
      >
        Reset second factors
      </ActionButton>
      {done && (
        <p class='notice' role='status' data-testid='factors-reset'>
          Second factors of {email} removed ({Object.entries(done).map(([kind, count]) => `${kind}: ${count}`).join(', ')}). The user was told by email.
        </p>
      )}
    </>
  )
}
