import { Redis } from 'ioredis'

/** The Redis every instance shares in the tests (started by .ci/run). */
export const REDIS_URL = 'redis://127.0.0.1:6379'

/** A connection to the shared Redis, or null when none answers (tests then skip with a reason). */
export async function connectRedis (): Promise<Redis | null> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
    return redis
  } catch {
    redis.disconnect()
    return null
  }
}
