import { randomBytes } from 'node:crypto'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from './config.js'
import { preparePrivateDataDir } from './data-dir.js'

/**
 * SECRET_KEY, or in development on the embedded database a key generated
 * once into DATA_DIR (loadConfig refuses to start without SECRET_KEY
 * anywhere else). Returns the key and whether it was generated.
 */
export async function resolveSecretKey (config: Config): Promise<{ secretKey: string; generatedAt?: string }> {
  if (config.secretKey) return { secretKey: config.secretKey }
  const path = join(config.dataDir, 'secret-key')
  await preparePrivateDataDir(config.dataDir)
  try {
    const secretKey = (await readFile(path, 'utf8')).trim()
    // A key file copied in, or left by an older version, readable by others.
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600)
    return { secretKey, generatedAt: path }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const secretKey = randomBytes(48).toString('base64url')
  // wx: never overwrite a key another process wrote meanwhile.
  await writeFile(path, secretKey + '\n', { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  return { secretKey: (await readFile(path, 'utf8')).trim(), generatedAt: path }
}
