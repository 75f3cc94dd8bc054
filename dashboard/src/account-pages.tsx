import { useLayoutEffect, useState } from 'preact/hooks'
import { ApiRequestError, type RemovedCredentials } from '../../src/client/index.js'
import { client } from './api.js'
import { describeError } from './ui.js'

/**
 * The pages emailed links open (PASSWORD_RESET_URL and EMAIL_VERIFY_URL
 * point here by default), for every user, signed in or not. The token comes
 * in the URL's fragment, which no server sees; the page drops it from the
 * address bar and history at once, and spends it only when the user submits
 * (mail scanners open links, and must not use them up).
 */

/** The link's token, read once and removed from the URL. */
function useLinkToken (token: string | undefined, page: string): string | undefined {
  const [kept] = useState(token)
  // Before the page is painted: the token never shows in the address bar a reader or a screenshot sees.
  useLayoutEffect(() => {
    if (token) history.replaceState(null, '', `#/${page}`)
  }, [])
  return kept
}

function linkProblem (error: unknown): string {
  if (error instanceof ApiRequestError && error.code === 'invalid_link_token') return `${error.message}.`
  return describeError(error)
}

function RequestResetForm ({ intro }: { intro: string }) {
  const [email, setEmail] = useState('')
  const [state, setState] = useState<{ kind: 'idle' | 'busy' | 'sent' } | { kind: 'error'; message: string }>({ kind: 'idle' })
  if (state.kind === 'sent') {
    return (
      <p class='notice' role='status' data-testid='reset-requested'>
        If an account with this address exists, a link to reset its password is on its way. It works once, for a limited time.
      </p>
    )
  }
  return (
    <form
      aria-label='Ask for a password reset link'
      onSubmit={async (e) => {
        e.preventDefault()
        setState({ kind: 'busy' })
        try {
          await client.requestPasswordReset(email.trim())
          setState({ kind: 'sent' })
        } catch (error) {
          setState({ kind: 'error', message: describeError(error) })
        }
      }}
    >
      <p>{intro}</p>
      <label>
        Email
        <input name='email' type='email' autocomplete='username' required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
      </label>
      <button type='submit' disabled={state.kind === 'busy'}>
        Email me a reset link
      </button>
      {state.kind === 'error' && (
        <p class='state error' role='alert'>
          {state.message}
        </p>
      )}
    </form>
  )
}

export function PasswordResetPage ({ token: linkToken }: { token: string | undefined }) {
  const token = useLinkToken(linkToken, 'reset-password')
  const [password, setPassword] = useState('')
  const [repeat, setRepeat] = useState('')
  const [state, setState] = useState<{ kind: 'idle' | 'busy' | 'done' } | { kind: 'error'; message: string; linkDead: boolean }>({ kind: 'idle' })
  let body
  if (!token) body = <RequestResetForm intro='Enter the address of your account: we will email you a link to choose a new password.' />
  else if (state.kind === 'done') {
    body = (
      <p class='notice' role='status' data-testid='reset-done'>
        Your password was changed, and every device signed in to your account was signed out. Sign in again with the new password.
      </p>
    )
  } else if (state.kind === 'error' && state.linkDead) {
    body = (
      <>
        <p class='state error' role='alert' data-testid='reset-error'>
          {state.message}
        </p>
        <RequestResetForm intro='Ask for a new link:' />
      </>
    )
  } else {
    body = (
      <form
        aria-label='Choose a new password'
        onSubmit={async (e) => {
          e.preventDefault()
          if (password !== repeat) {
            setState({ kind: 'error', message: 'The two passwords differ.', linkDead: false })
            return
          }
          setState({ kind: 'busy' })
          try {
            await client.confirmPasswordReset(token, password)
            setState({ kind: 'done' })
          } catch (error) {
            const linkDead = error instanceof ApiRequestError && error.code === 'invalid_link_token'
            setState({ kind: 'error', message: linkProblem(error), linkDead })
          }
        }}
      >
        <label>
          New password
          <input name='new-password' type='password' autocomplete='new-password' required minLength={8} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          Repeat it
          <input name='repeat-password' type='password' autocomplete='new-password' required value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
        </label>
        <button type='submit' disabled={state.kind === 'busy'}>
          {state.kind === 'busy' ? 'Saving…' : 'Set the new password'}
        </button>
        {state.kind === 'error' && (
          <p class='state error' role='alert' data-testid='reset-error'>
            {state.message}
          </p>
        )}
      </form>
    )
  }
  return (
    <main class='login'>
      <h1>Reset your password</h1>
      {body}
    </main>
  )
}

export function VerifyEmailPage ({ token: linkToken }: { token: string | undefined }) {
  const token = useLinkToken(linkToken, 'verify-email')
  const [state, setState] = useState<{ kind: 'idle' | 'busy' } | { kind: 'done'; text: string } | { kind: 'error'; message: string }>({ kind: 'idle' })
  let body
  if (!token) body = <p class='state error'>This page needs the link from your email.</p>
  else if (state.kind === 'done') {
    body = (
      <p class='notice' role='status' data-testid='verify-done'>
        {state.text}
      </p>
    )
  } else {
    body = (
      <>
        <p>Confirm that this address is yours.</p>
        <button
          type='button'
          disabled={state.kind === 'busy'}
          onClick={async () => {
            setState({ kind: 'busy' })
            try {
              const result = await client.verifyEmail(token)
              const text = result.purpose === 'email_change' ? `Your account's address is now ${result.email}.` : `Thank you: ${result.email} is confirmed.`
              setState({ kind: 'done', text })
            } catch (error) {
              setState({ kind: 'error', message: linkProblem(error) })
            }
          }}
        >
          Confirm my address
        </button>
        {state.kind === 'error' && (
          <p class='state error' role='alert' data-testid='verify-error'>
            {state.message}
          </p>
        )}
      </>
    )
  }
  return (
    <main class='login'>
      <h1>Confirm your email address</h1>
      {body}
    </main>
  )
}

/** Whether `error` is the service's refusal of a passkey or API key while the address is unverified. */
export function isVerificationRequired (error: unknown): boolean {
  return error instanceof ApiRequestError && error.code === 'email_verification_required'
}

/**
 * What a passkey or an API key refused for an unverified address (403
 * email_verification_required) means, and the way out: the link sent at
 * sign-up, or a new one.
 */
export function VerifyAddressFirst ({ what }: { what: 'passkey' | 'API key' }) {
  const [state, setState] = useState<{ kind: 'idle' | 'busy' | 'sent' } | { kind: 'error'; message: string }>({ kind: 'idle' })
  return (
    <div class='verify-first' data-testid='email-verification-required'>
      <p role='alert'>
        <strong>Confirm your email address first.</strong> {what === 'passkey' ? 'A passkey' : 'An API key'} gets into your account without your password,
        so one can only be added once your address is confirmed. Open the link we emailed you, or ask for a new one.
      </p>
      {state.kind === 'sent'
        ? (
          <p class='notice' role='status'>
            A new link is on its way to your address. Open it, then add the {what} again.
          </p>
          )
        : (
          <button
            type='button'
            disabled={state.kind === 'busy'}
            onClick={async () => {
              setState({ kind: 'busy' })
              try {
                await client.resendVerification()
                setState({ kind: 'sent' })
              } catch (error) {
                const confirmed = error instanceof ApiRequestError && error.code === 'email_already_verified'
                setState({ kind: 'error', message: confirmed ? `Your address is confirmed now: add the ${what} again.` : describeError(error) })
              }
            }}
          >
            {state.kind === 'busy' ? 'Sending…' : 'Email me a new confirmation link'}
          </button>
          )}
      {state.kind === 'error' && (
        <p class='state error' role='alert'>
          {state.message}
        </p>
      )}
    </div>
  )
}

/**
 * The one-click link of a "your password was changed" notice that listed
 * passkeys and API keys added since the address was last confirmed
 * (CREDENTIAL_REMOVAL_URL points here by default). Opening it spends
 * nothing; the button removes what the email listed, those still there.
 */
export function RemoveCredentialsPage ({ token: linkToken }: { token: string | undefined }) {
  const token = useLinkToken(linkToken, 'remove-credentials')
  const [state, setState] = useState<{ kind: 'idle' | 'busy' } | { kind: 'done'; removed: RemovedCredentials } | { kind: 'error'; message: string; linkDead: boolean }>({
    kind: 'idle',
  })
  let body
  if (!token) body = <p class='state error'>This page needs the link from your email.</p>
  else if (state.kind === 'done') {
    const { passkeys, apiKeys } = state.removed
    const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`
    body = (
      <div class='notice' role='status' data-testid='removal-done'>
        {passkeys + apiKeys === 0
          ? <p>Nothing was left to remove: the passkeys and API keys listed in the email were already gone.</p>
          : (
            <p>
              Removed: {count(passkeys, 'passkey', 'passkeys')} and {count(apiKeys, 'API key', 'API keys')}. They no longer get into your account, and
              devices signed in with those passkeys were signed out.
            </p>
            )}
        <p>
          If you did not change your password yourself, <a href='#/reset-password'>reset it now</a>.
        </p>
      </div>
    )
  } else {
    body = (
      <>
        <p>
          Your password was just changed. The email that brought you here listed the passkeys and API keys added to your account since its address
          was last confirmed: each of them gets in without the password.
        </p>
        <p>
          If you do not know one of them, remove them all. <strong>The passkeys and API keys listed in the email</strong> will be removed, and
          devices signed in with those passkeys will be signed out. Nothing else changes: you can add your own again afterwards.
        </p>
        <button
          type='button'
          class='danger'
          disabled={state.kind === 'busy' || (state.kind === 'error' && state.linkDead)}
          onClick={async () => {
            setState({ kind: 'busy' })
            try {
              setState({ kind: 'done', removed: await client.removeListedCredentials(token) })
            } catch (error) {
              setState({ kind: 'error', message: linkProblem(error), linkDead: error instanceof ApiRequestError && error.code === 'invalid_link_token' })
            }
          }}
        >
          {state.kind === 'busy' ? 'Removing…' : 'Remove them'}
        </button>
        {state.kind === 'error' && (
          <div role='alert' data-testid='removal-error'>
            <p class='state error'>{state.message}</p>
            {state.linkDead && (
              <p>
                If a passkey or an API key you do not know is still on your account, sign in and remove it from your passkeys or API keys page, then
                change your password.
              </p>
            )}
          </div>
        )}
      </>
    )
  }
  return (
    <main class='login'>
      <h1>Remove passkeys and API keys</h1>
      {body}
    </main>
  )
}
