/**
 * A size-bounded least-recently-used map, in a few lines over Map's insertion
 * order, so the plugin needs no dependency beyond jose, fastify and
 * fastify-plugin. Expiry is the caller's business (entries carry their time).
 */
export class BoundedCache<V> {
  private readonly map = new Map<string, V>()

  constructor (readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer')
  }

  get (key: string): V | undefined {
    const value = this.map.get(key)
    if (value === undefined) return undefined
    // Most recently used goes last.
    this.map.delete(key)
    this.map.set(key, value)
    return value
  }

  set (key: string, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value as string
      this.map.delete(oldest)
    }
  }

  delete (key: string): void {
    this.map.delete(key)
  }

  get size (): number {
    return this.map.size
  }

  keys (): string[] {
    return [...this.map.keys()]
  }
}
