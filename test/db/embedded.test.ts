import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { cliDatabase } from '../../src/cli/database.js'
import { loadConfig } from '../../src/config.js'
import { EmbeddedDatabaseError, embeddedDatabaseOwner, startEmbeddedDatabase } from '../../src/db/embedded.js'
import { resolveSecretKey } from '../../src/secret-key.js'
import { withClient } from '../helpers/database.js'
import { canSwitchUser, intrudeAsOtherUser } from '../helpers/other-user.js'

/**
 * The embedded database is reachable by the service and its own CLIs only:
 * served on a Unix-domain socket inside DATA_DIR, never on TCP, with DATA_DIR,
 * the lock file, the socket and the generated SECRET_KEY file owner-only
 * (another local user, or any process sharing the host's network, cannot
 * connect; pglite-socket itself accepts any user and password).
 */

t.setTimeout(240_000)

const mode = async (path: string) => (await stat(path)).mode & 0o777

/** The TCP ports this process listens on (Linux: its socket inodes matched against /proc/net/tcp{,6}). */
async function listeningTcpPorts (): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '')
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode) inodes.add(inode)
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, the inode is the tenth field.
      if (fields[3] === '0A' && inodes.has(fields[9]!)) ports.push(parseInt(fields[1]!.split(':')[1]!, 16))
    }
  }
  return ports.sort()
}

async function selectOne (url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one
  } finally {
    await client.end()
  }
}

/** The socket file a URL of startEmbeddedDatabase names (pg: `host` is the folder, the file is `.s.PGSQL.<port>`). */
function socketPathOf (url: string): string {
  const parsed = new URL(url)
  return join(parsed.searchParams.get('host') ?? '', `.s.PGSQL.${parsed.searchParams.get('port') ?? '5432'}`)
}

t.test('a DATA_DIR left world-readable: the start makes it owner-only and serves the database on a socket inside it, not on TCP', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'embedded-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  // As an earlier version (or a copy) left it: folder and development key readable by everyone.
  await chmod(dataDir, 0o755)
  await writeFile(join(dataDir, 'secret-key'), 'k'.repeat(64) + '\n', { mode: 0o644 })
  await chmod(join(dataDir, 'secret-key'), 0o644)

  const config = loadConfig({ DATA_DIR: dataDir })
  t.equal(config.databaseUrl, undefined, 'no DATABASE_URL: the embedded database')
  const key = await resolveSecretKey(config)
  t.equal(key.secretKey, 'k'.repeat(64), 'the existing development key is kept')
  t.equal(await mode(join(dataDir, 'secret-key')), 0o600, 'the development SECRET_KEY file is 0600')

  const portsBefore = await listeningTcpPorts()
  const db = await startEmbeddedDatabase({ dataDir })
  let stopped = false
  t.teardown(async () => {
    if (!stopped) await db.stop()
  })

  t.equal(await mode(dataDir), 0o700, 'DATA_DIR is 0700')
  const lockPath = join(dataDir, 'pgdata.lock')
  t.equal(await mode(lockPath), 0o600, 'the lock file is 0600')
  const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number; url: string }
  t.equal(lock.url, db.url, 'the lock file names the URL the service uses')
  t.notMatch(lock.url, /@[^/?]*:\d+/, 'the URL names no TCP port')
  t.match(new URL(lock.url).searchParams.get('host'), /^\//, 'but a socket folder, which pg takes over the host name')
  const socketPath = socketPathOf(lock.url)
  t.equal(socketPath, join(dataDir, '.s.PGSQL.5432'), 'the socket is in DATA_DIR')
  const socketStat = await stat(socketPath)
  t.ok(socketStat.isSocket(), 'a Unix-domain socket')
  t.equal(socketStat.mode & 0o077, 0, 'the socket grants nothing to group or others')
  if (process.platform === 'linux') {
    t.same(await listeningTcpPorts(), portsBefore, 'this process listens on no new TCP port')
  }

  t.equal(await selectOne(db.url), 1, 'the socket serves the database')

  if (canSwitchUser) {
    const intruder = await intrudeAsOtherUser(lockPath, dataDir)
    t.same(intruder, { readLock: 'EACCES', connect: 'EACCES' }, 'another local user can neither read the lock nor connect')
  }

  // The CLIs (npm run db:migrate, keys:rotate, admin:create) go through the running owner.
  const owner = await embeddedDatabaseOwner(dataDir)
  t.equal(owner?.pid, process.pid, 'this process owns the folder')
  const cli = await cliDatabase(config)
  t.equal(cli.url, db.url, "the CLI uses the owner's socket")
  await withClient(cli.url, (client) => client.query("CREATE TABLE cli_probe (note text); INSERT INTO cli_probe VALUES ('from the CLI')"))
  await cli.close()
  const seen = await withClient(db.url, (client) => client.query<{ note: string }>('SELECT note FROM cli_probe'))
  t.same(seen.rows, [{ note: 'from the CLI' }], "what the CLI wrote is in the owner's database")

  await db.stop()
  stopped = true
  await t.rejects(stat(lockPath), { code: 'ENOENT' }, 'stop removes the lock')
  await t.rejects(stat(socketPath), { code: 'ENOENT' }, 'and the socket')

  // A crash (SIGKILL) leaves the lock and the socket file behind; the next start takes them over.
  const crashed = spawn(process.execPath, [
    '-e',
    "require('node:net').createServer().listen(process.argv[1], () => { require('node:fs').writeFileSync(process.argv[2], JSON.stringify({ pid: process.pid, url: 'x' })); console.log('up') })",
    socketPath,
    lockPath,
  ])
  await new Promise((resolve) => crashed.stdout.once('data', resolve))
  crashed.kill('SIGKILL')
  await new Promise((resolve) => crashed.once('close', resolve))
  t.ok((await stat(socketPath)).isSocket(), 'the dead process left its socket file')
  const again = await startEmbeddedDatabase({ dataDir })
  t.equal(await selectOne(again.url), 1, 'a start after a crash serves again')
  const rows = await withClient(again.url, (client) => client.query<{ note: string }>('SELECT note FROM cli_probe'))
  t.same(rows.rows, [{ note: 'from the CLI' }], 'on the same data')
  t.equal(await mode(lockPath), 0o600, 'its new lock is 0600 too')
  await again.stop()
})

t.test('a DATA_DIR too long for a socket path is refused with the reason, before anything is created', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'embedded-long-'))
  t.teardown(() => rm(base, { recursive: true, force: true }))
  const dataDir = join(base, 'd'.repeat(100))
  await t.rejects(startEmbeddedDatabase({ dataDir }), EmbeddedDatabaseError)
  await startEmbeddedDatabase({ dataDir }).catch((error: Error) => {
    t.match(error.message, /107 bytes/, `names the limit: ${error.message}`)
    t.match(error.message, /DATABASE_URL|shorter/, 'and what to do')
  })
  await t.rejects(stat(dataDir), { code: 'ENOENT' }, 'nothing was created')
})

t.test('the in-memory database of the tests: a socket in a private temporary folder, no TCP port', async (t) => {
  const portsBefore = await listeningTcpPorts()
  const db = await startEmbeddedDatabase()
  let stopped = false
  t.teardown(async () => {
    if (!stopped) await db.stop()
  })
  const socketPath = socketPathOf(db.url)
  const folder = new URL(db.url).searchParams.get('host')!
  t.equal(await mode(folder), 0o700, 'the folder is 0700')
  t.equal((await stat(socketPath)).mode & 0o077, 0, 'the socket grants nothing to group or others')
  if (process.platform === 'linux') t.same(await listeningTcpPorts(), portsBefore, 'no new TCP port')
  t.equal(await selectOne(db.url), 1, 'the socket serves the database')
  await db.stop()
  stopped = true
  await t.rejects(stat(folder), { code: 'ENOENT' }, 'stop removes the folder')
})
