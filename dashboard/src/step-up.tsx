import { useEffect, useState } from 'preact/hooks'
import { InvalidCredentialsError, type StepUpRequiredError } from '../../src/client/index.js'
import { describeError } from './ui.js'

/**
 * The step-up prompt (DESIGN §3.12): when a write needs a recent
 * authentication, the client asks here (AuthClientOptions.onStepUpRequired);
 * the admin confirms with a factor, and the write is retried. One prompt at a
 * time: concurrent refusals wait for the same answer.
 */

type Method = 'otp' | 'recovery_code' | 'password' | 'passkey'
type Proof = { password: string } | { otp: string } | { recoveryCode: string } | { passkey: true }

interface Prompt {
  required: StepUpRequiredError
  resolve: (steppedUp: boolean) => void
}

let current: Promise<boolean> | null = null
let show: ((prompt: Prompt | null) => void) | null = null
let stepUp: ((proof: Proof) => Promise<unknown>) | null = null

/** Wires the prompt to the client's stepUp; called once by api.ts. */
export function connectStepUp (run: (proof: Proof) => Promise<unknown>): void {
  stepUp = run
}

/** The client's onStepUpRequired: shows the dialog, resolves whether the admin stepped up. */
export function askForStepUp (required: StepUpRequiredError): Promise<boolean> {
  if (!show) return Promise.resolve(false)
  current ??= new Promise<boolean>((resolve) => show!({ required, resolve })).finally(() => {
    current = null
  })
  return current
}

export function StepUpDialog () {
  const [prompt, setPrompt] = useState<Prompt | null>(null)
  const [method, setMethod] = useState<Method>('otp')
  const [value, setValue] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    show = (next) => {
      setPrompt(next)
      setValue('')
      setError(null)
    }
    return () => {
      show = null
    }
  }, [])
  if (!prompt) return null

  const close = (steppedUp: boolean) => {
    prompt.resolve(steppedUp)
    setPrompt(null)
  }
  async function submit (event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const proof: Proof = method === 'passkey'
        ? { passkey: true }
        : method === 'password' ? { password: value } : method === 'otp' ? { otp: value.replace(/\s/g, '') } : { recoveryCode: value.trim() }
      await stepUp!(proof)
      close(true)
    } catch (e) {
      setError(e instanceof InvalidCredentialsError ? 'That was not accepted. Try again.' : describeError(e))
    } finally {
      setBusy(false)
    }
  }
  const labels: Record<Exclude<Method, 'passkey'>, string> = { otp: 'Code from your authenticator app', recovery_code: 'Recovery code', password: 'Password' }
  return (
    <div class='dialog-backdrop'>
      <div role='dialog' aria-modal='true' aria-label='Confirm it is you'>
        <form class='dialog' onSubmit={submit} data-testid='step-up'>
          <h2>Confirm it is you</h2>
          <p>{prompt.required.message}. This change needs a recent sign-in.</p>
          <label>
            With
            <select value={method} onChange={(e) => setMethod(e.currentTarget.value as Method)} aria-label='Confirm with'>
              <option value='otp'>an authenticator code</option>
              <option value='passkey'>a passkey</option>
              <option value='recovery_code'>a recovery code</option>
              <option value='password'>my password (accounts without a second factor)</option>
            </select>
          </label>
          {method !== 'passkey' && (
            <label>
              {labels[method]}
              {method === 'password'
                ? <input name='step-up-secret' type='password' autocomplete='current-password' required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
                : <input name='step-up-secret' type='text' autocomplete='one-time-code' inputMode={method === 'otp' ? 'numeric' : 'text'} required value={value} onInput={(e) => setValue(e.currentTarget.value)} />}
            </label>
          )}
          {error && <p class='state error' role='alert'>{error}</p>}
          <div class='actions'>
            <button type='submit' disabled={busy}>{busy ? 'Checking…' : 'Confirm'}</button>
            <button type='button' onClick={() => close(false)} disabled={busy}>Cancel</button>
          </div>
        </form>
      </div>
    </div>
  )
}
