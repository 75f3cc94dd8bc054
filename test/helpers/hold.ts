import type { FastifyInstance } from 'fastify'
import type { SessionStore } from '../../src/features/sessions/sessions.js'

/**
 * Holds the next SessionStore.start call of `app` until `release()`:
 * `reached` settles once a login has passed its password check and waits
 * between it and its session insert. Makes login races deterministic.
 */
export function holdNextSessionStart (app: FastifyInstance): { reached: Promise<void>; release(): void } {
  const sessions = app.sessions as SessionStore & { start: SessionStore['start'] }
  const original = sessions.start
  let arrive!: () => void
  let open!: () => void
  const reached = new Promise<void>((resolve) => (arrive = resolve))
  const gate = new Promise<void>((resolve) => (open = resolve))
  sessions.start = async (...args) => {
    sessions.start = original
    arrive()
    await gate
    return original.apply(sessions, args)
  }
  return { reached, release: () => open() }
}
