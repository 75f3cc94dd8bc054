import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { AuthError, RateLimitedError, ServiceUnavailableError, SessionExpiredError } from '../../src/client/index.js'

export type Load<T> =
  | { state: 'loading' }
  | { state: 'error'; error: unknown }
  | { state: 'ready'; data: T }

/** Runs `load` when `key` changes; `reload` runs it again. */
export function useLoad<T> (load: () => Promise<T>, key: string): [Load<T>, () => void] {
  const [result, setResult] = useState<Load<T>>({ state: 'loading' })
  const [round, setRound] = useState(0)
  const loadedKey = useRef<string | null>(null)
  useEffect(() => {
    let live = true
    // A reload of the same data keeps showing the current data until the new arrives.
    if (loadedKey.current !== key) setResult({ state: 'loading' })
    loadedKey.current = key
    load().then(
      (data) => live && setResult({ state: 'ready', data }),
      (error: unknown) => live && setResult({ state: 'error', error })
    )
    return () => {
      live = false
    }
    // Reloads on key and round only: `load` is a new closure on every render.
  }, [key, round])
  return [result, useCallback(() => setRound((r) => r + 1), [])]
}

export function describeError (error: unknown): string {
  if (error instanceof RateLimitedError) return `Too many attempts. Try again in ${error.retryAfterSeconds} s.`
  if (error instanceof ServiceUnavailableError) return `The service is busy. Try again in ${error.retryAfterSeconds} s.`
  if (error instanceof SessionExpiredError) return 'Your session has expired.'
  if (error instanceof AuthError) return error.message
  return error instanceof Error ? error.message : String(error)
}

export function Loading ({ what }: { what: string }) {
  return (
    <p class='state loading' role='status'>
      Loading {what}…
    </p>
  )
}

/**
 * Whether asking again may help: no answer, a busy or failing server, a rate
 * limit. A refusal (400, 403, 404, 409...) answers the same the next time,
 * so it gets no Retry button.
 */
export function isRetryable (error: unknown): boolean {
  if (!(error instanceof AuthError)) return true
  return error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500
}

/** The service's answer "there is no such thing" (404). */
export function isNotFound (error: unknown): boolean {
  return error instanceof AuthError && error.status === 404
}

export function ErrorBox ({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div class='state error' role='alert'>
      <span>{describeError(error)}</span>
      {retry && isRetryable(error) && (
        <button type='button' onClick={retry}>
          Retry
        </button>
      )}
    </div>
  )
}

export function Empty ({ children }: { children: ComponentChildren }) {
  return <p class='state empty'>{children}</p>
}

export function LoadView<T> ({ load, what, retry, children }: { load: Load<T>; what: string; retry: () => void; children: (data: T) => ComponentChildren }) {
  if (load.state === 'loading') return <Loading what={what} />
  if (load.state === 'error') return <ErrorBox error={load.error} retry={retry} />
  return <>{children(load.data)}</>
}

export function when (iso: string | null): string {
  if (!iso) return '—'
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString()
}

/** A button that runs an async action, shows it is busy, and reports failure. */
export function ActionButton ({
  action,
  children,
  class: className,
  confirm: question,
  label,
}: {
  action: () => Promise<unknown>
  children: ComponentChildren
  class?: string
  confirm?: string
  label?: string
}) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  return (
    <span class='action'>
      <button
        type='button'
        class={className}
        aria-label={label}
        disabled={busy}
        onClick={async () => {
          if (question && !window.confirm(question)) return
          setBusy(true)
          setError(null)
          try {
            await action()
          } catch (e) {
            setError(e)
          } finally {
            setBusy(false)
          }
        }}
      >
        {busy ? '…' : children}
      </button>
      {error !== null && (
        <span class='inline-error' role='alert'>
          {describeError(error)}
        </span>
      )}
    </span>
  )
}
