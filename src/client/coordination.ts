/**
 * Coordination between tabs of one browser, feature-detected: Web Locks
 * serialise refreshes (one tab refreshes, the others wait for it), and a
 * BroadcastChannel hands the new access token and sign-outs to the other
 * tabs. Without either (Node, old browsers) each client stands alone.
 */

export type TabMessage =
  | { type: 'token'; accessToken: string; expiresAt: number }
  | { type: 'signed_out' }

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}
interface ChannelLike {
  postMessage(message: unknown): void
  close(): void
  onmessage: ((event: { data: unknown }) => void) | null
}

export interface TabCoordinator {
  /** Runs `task` while holding the cross-tab refresh lock (or at once without locks). */
  withRefreshLock<T>(task: () => Promise<T>): Promise<T>
  post(message: TabMessage): void
  /** Notes (by time only, no secret) that this tab just refreshed, before it releases the lock. */
  markRefreshed(): void
  /** Whether any tab noted a refresh after `since` (epoch ms). */
  refreshedSince(since: number): boolean
  close(): void
}

export function createCoordinator(name: string, onMessage: (message: TabMessage) => void, enabled: boolean): TabCoordinator {
  const g = globalThis as unknown as {
    navigator?: { locks?: LockManagerLike }
    BroadcastChannel?: new (name: string) => ChannelLike
    localStorage?: { getItem(key: string): string | null; setItem(key: string, value: string): void }
  }
  // A tab that waited for the lock must know whether the holder refreshed,
  // since its broadcast token may arrive after the lock does: the holder
  // notes the time in localStorage (a timestamp, never a token).
  let storage: typeof g.localStorage
  try {
    storage = enabled ? g.localStorage : undefined
  } catch {
    storage = undefined // storage access refused (sandboxed frame, privacy settings)
  }
  const stampKey = `${name}:refreshed-at`
  const locks = enabled && g.navigator?.locks && typeof g.navigator.locks.request === 'function' ? g.navigator.locks : undefined
  let channel: ChannelLike | undefined
  if (enabled && typeof g.BroadcastChannel === 'function') {
    channel = new g.BroadcastChannel(name)
    channel.onmessage = (event) => {
      const data = event.data as TabMessage | undefined
      if (data && (data.type === 'token' || data.type === 'signed_out')) onMessage(data)
    }
    // Node's BroadcastChannel would keep the process alive.
    ;(channel as unknown as { unref?: () => void }).unref?.()
  }
  return {
    withRefreshLock: (task) => (locks ? locks.request(`${name}:refresh`, task) : task()),
    post: (message) => {
      try {
        channel?.postMessage(message)
      } catch {
        /* a closed channel: nothing to tell */
      }
    },
    markRefreshed: () => {
      try {
        storage?.setItem(stampKey, String(Date.now()))
      } catch {
        /* storage full or refused: the other tabs refresh themselves */
      }
    },
    refreshedSince: (since) => {
      try {
        return Number(storage?.getItem(stampKey) ?? 0) >= since
      } catch {
        return false
      }
    },
    close: () => channel?.close(),
  }
}
