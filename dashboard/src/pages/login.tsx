import { useState } from 'preact/hooks'
import { InvalidCredentialsError, MfaRequiredError } from '../../../src/client/index.js'
import { client } from '../api.js'
import { SecondStepForm } from '../mfa-pages.js'
import { PasskeySignIn } from '../passkey-pages.js'
import { describeError } from '../ui.js'

/** The sign-in page: password (then a second step when the account has one), or a passkey; admins only. */

export function LoginPage ({ notice, onSignedIn }: { notice: string | null; onSignedIn: () => void }) {
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  // The second step of a sign-in with a second factor (mfa-pages.tsx).
  const [challenge, setChallenge] = useState<MfaRequiredError | null>(null)
  async function admitted () {
    if (client.claims?.role !== 'admin') {
      await client.logout().catch(() => undefined)
      setError('This account is not an administrator. The dashboard is for admins only.')
      return
    }
    onSignedIn()
  }
  async function submit (event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await client.login(email, password)
      await admitted()
    } catch (e) {
      if (e instanceof MfaRequiredError) setChallenge(e)
      else setError(e instanceof InvalidCredentialsError ? 'Wrong email or password.' : describeError(e))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class='login'>
      <h1>token-auth admin</h1>
      {notice && (
        <p class='notice' role='status' data-testid='login-notice'>
          {notice}
        </p>
      )}
      {challenge && (
        <SecondStepForm
          challenge={challenge}
          onDone={() => {
            setChallenge(null)
            void admitted()
          }}
          onRestart={() => {
            setChallenge(null)
            setPassword('')
          }}
        />
      )}
      <form onSubmit={submit} aria-label='Sign in' hidden={challenge !== null}>
        <label>
          Email
          <input name='email' type='email' autocomplete='username' required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name='password'
            type='password'
            autocomplete='current-password'
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <button type='submit' disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p class='state error' role='alert' data-testid='login-error'>
            {error}
          </p>
        )}
        <a href='#/reset-password'>Forgot your password?</a>
      </form>
      {challenge === null && (
        <PasskeySignIn onSignedIn={onSignedIn} onNotAdmin={() => setError('This account is not an administrator. The dashboard is for admins only.')} />
      )}
    </main>
  )
}
