import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'

/** Whether this process may run another as a different user (the intruder below). */
export const canSwitchUser = process.getuid?.() === 0

/** What another local user got: each attempt's outcome, `ok` or the error code. */
export interface IntruderResult {
  readLock: string
  connect: string
}

// Runs as user nobody: reads the embedded database's lock file (which named
// the database's TCP URL before it moved to a socket), then connects with pg
// through the socket folder, any user name and password, and runs a query.
const INTRUDER = `
const fs = require('node:fs')
const pg = require(process.argv[1])
const [lockPath, socketDir] = process.argv.slice(2)
const result = {}
try { fs.readFileSync(lockPath, 'utf8'); result.readLock = 'ok' } catch (e) { result.readLock = e.code }
const client = new pg.Client({ host: socketDir, port: 5432, user: 'postgres', password: 'anything', database: 'postgres', connectionTimeoutMillis: 3000 })
client.connect()
  .then(() => client.query('SELECT 1'))
  .then(() => { result.connect = 'ok' }, (e) => { result.connect = e.code || e.message })
  .finally(() => { client.end().catch(() => {}); console.log(JSON.stringify(result)) })
`

/** Another local user (nobody, 65534) trying to reach the embedded database in `socketDir`; needs root (canSwitchUser). */
export function intrudeAsOtherUser (lockPath: string, socketDir: string): Promise<IntruderResult> {
  const pgPath = createRequire(import.meta.url).resolve('pg')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', INTRUDER, pgPath, lockPath, socketDir], {
      uid: 65534,
      gid: 65534,
      cwd: '/',
      env: { PATH: process.env.PATH ?? '' },
    })
    let stdout = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as IntruderResult)
      } catch {
        reject(new Error(`the intruder process exited with ${code} and printed ${JSON.stringify(stdout)}`))
      }
    })
  })
}
