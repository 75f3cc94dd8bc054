import { useEffect, useState } from 'preact/hooks'
import { ApiRequestError } from '../../src/client/index.js'
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
  useEffect(() => {
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
