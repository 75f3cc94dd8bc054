import { createInterface } from 'node:readline'
import { normalizeEmail, PUBLIC_USER_SELECT } from '../features/accounts/accounts.js'
import { Administration } from '../features/admin/administration.js'
import { DomainError } from '../errors.js'
import { recordAuditEvent } from '../shared/audit.js'
import { PasswordHasher, passwordProblem } from '../features/accounts/passwords.js'
import { sessionRevoker } from '../features/sessions/sessions.js'
import { parseCommandLine } from './command.js'
import { runCli } from './database.js'

/**
 * npm run admin:create -- --email E
 *
 * Promotes an existing user to admin, or creates an admin with a password read
 * from stdin (a hidden prompt on a terminal): never from the command line,
 * where it would land in shell history and the process list. Works on
 * Postgres and on the embedded database, also while the service runs on it.
 */
const USAGE = 'npm run admin:create -- --email <email>   (the password on stdin)'
const values = parseCommandLine({
  name: 'admin:create',
  usage: [USAGE, 'node dist/src/cli/admin-create.js --email <email>'],
  description:
    'Makes <email> an admin. An existing user is promoted, and their sessions end (they sign in again). ' +
    'Otherwise the account is created, its address counted as verified, with a password read from stdin: ' +
    'a hidden prompt on a terminal, or the first line piped in; never from the command line, where it would ' +
    'land in shell history and the process list.',
  options: { email: { type: 'string', value: 'email', description: "the account's address (required)" } },
  environment:
    'DATABASE_URL (unset: the embedded database in DATA_DIR, through the running service when it runs), DATA_DIR, ' +
    'SECRET_KEY (required with DATABASE_URL), BCRYPT_COST.',
})
if (!values.email) {
  console.error(`admin:create: --email is required; usage: ${USAGE} (see --help)`)
  process.exit(2)
}
let email: string
try {
  email = normalizeEmail(values.email)
} catch (error) {
  console.error(error instanceof DomainError ? `--email: ${error.message}` : error)
  process.exit(2)
}
await runCli(async ({ config, db }) => {
  const existing = await db.user.findUnique({ where: { email }, select: PUBLIC_USER_SELECT })
  if (existing?.role === 'admin') {
    console.log(`${email} is already an admin`)
  } else if (existing) {
    // The admin API's rule: a change of privilege ends every session (running instances see it at their next sync).
    await new Administration(db, sessionRevoker(db)).updateUser({ actorId: null, userId: existing.id, role: 'admin', via: 'cli' })
    console.log(`${email} is now an admin; their sessions are ended, they sign in again`)
  } else {
    const password = await readPassword(`password for new admin ${email}: `)
    const problem = passwordProblem(password)
    if (problem) throw new Error(problem)
    const passwordHash = await new PasswordHasher(config.bcryptCost).hash(password)
    await db.$transaction(async (tx) => {
      // The operator vouches for the address: under REQUIRE_EMAIL_VERIFICATION the first admin
      // could not sign in otherwise, and no admin would exist to read a development mailbox.
      const user = await tx.user.create({ data: { email, passwordHash, role: 'admin', emailVerifiedAt: new Date() }, select: { id: true } })
      await recordAuditEvent(tx, { type: 'user_signed_up', userId: user.id, details: { role: 'admin', via: 'cli' } })
    })
    console.log(`created admin ${email}`)
  }
})

/** One line from stdin; on a terminal, prompted without echo. */
async function readPassword (prompt: string): Promise<string> {
  const input = process.stdin
  if (!input.isTTY) {
    const lines = createInterface({ input })
    // The first line, or undefined when stdin ends before one.
    const line = await new Promise<string | undefined>((resolve) => {
      lines.once('line', resolve)
      lines.once('close', () => resolve(undefined))
    })
    lines.close()
    if (typeof line !== 'string') throw new Error('no password on stdin')
    return line
  }
  process.stdout.write(prompt)
  input.setRawMode(true)
  input.resume()
  input.setEncoding('utf8')
  return new Promise((resolve, reject) => {
    let password = ''
    input.on('data', function onData (chunk: string) {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          input.setRawMode(false)
          input.pause()
          input.off('data', onData)
          process.stdout.write('\n')
          resolve(password)
          return
        }
        if (char === '\u0003') {
          input.setRawMode(false)
          reject(new Error('cancelled'))
          return
        }
        if (char === '\u007f') password = password.slice(0, -1)
        else password += char
      }
    })
  })
}
