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
  request<T>(name: string, callback: (lock: unknown) => Promise<T>): Promise<T>
  request<T>(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T>
}
interface ChannelLike {
  postMessage(message: unknown): void
  close(): void
  onmessage: ((event: { data: unknown }) => void) | null
}

export interface TabCoordinator {
  /**
   * Runs `task` while holding the cross-tab refresh lock (or at once without
   * locks); `waited` tells it whether another tab held the lock first, and
   * so has most likely just refreshed.
   */
  withRefreshLock<T>(task: (waited: boolean) => Promise<T>): Promise<T>
  post(message: TabMessage): void
  close(): void
}

export function createCoordinator (name: string, onMessage: (message: TabMessage) => void, enabled: boolean): TabCoordinator {
  const g = globalThis as unknown as {
    navigator?: { locks?: LockManagerLike }
    BroadcastChannel?: new (name: string) => ChannelLike
  }
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
    withRefreshLock: async <T>(task: (waited: boolean) => Promise<T>): Promise<T> => {
      if (!locks) return task(false)
      const lockName = `${name}:refresh`
      // Try without waiting first: only a tab that had to wait knows another
      // tab refreshed meanwhile, whose token may still be on its way (the
      // BroadcastChannel delivers across processes, after the lock).
      let ran = false
      const immediate = await locks.request(lockName, { ifAvailable: true }, async (lock) => {
        if (!lock) return undefined
        ran = true
        return task(false)
      })
      if (ran) return immediate as T
      return locks.request(lockName, () => task(true))
    },
    post: (message) => {
      try {
        channel?.postMessage(message)
      } catch {
        /* a closed channel: nothing to tell */
      }
    },
    close: () => channel?.close(),
  }
}
