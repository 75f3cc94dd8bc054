/**
 * Where body transport keeps the refresh token. Plug in the platform's secure
 * storage (Keychain/Keystore through a bridge, an encrypted file in Node);
 * the SDK never keeps it anywhere else. Methods may be sync or async.
 */
export interface RefreshTokenStore {
  get(): Promise<string | null> | string | null
  set(token: string): Promise<void> | void
  delete(): Promise<void> | void
}

/** Keeps the refresh token in this process's memory only (tests, short-lived scripts). */
export class MemoryStore implements RefreshTokenStore {
  private token: string | null = null
  get (): string | null {
    return this.token
  }

  set (token: string): void {
    this.token = token
  }

  delete (): void {
    this.token = null
  }
}
