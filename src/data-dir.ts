import { chmod, mkdir, stat } from 'node:fs/promises'

/**
 * Creates DATA_DIR owner-only (0700), or tightens one created earlier with
 * looser permissions: it holds the embedded database's files and socket and
 * the generated development SECRET_KEY, none of which another local user may
 * read or reach.
 */
export async function preparePrivateDataDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const { mode } = await stat(dir)
  if ((mode & 0o077) === 0) return
  try {
    await chmod(dir, mode & 0o700)
  } catch (error) {
    throw new Error(
      `DATA_DIR ${dir} is open to other users (mode ${(mode & 0o777).toString(8)}) and could not be made owner-only: ` +
        `${(error as Error).message}; run the service as the folder's owner or choose another DATA_DIR`,
      { cause: error }
    )
  }
}
