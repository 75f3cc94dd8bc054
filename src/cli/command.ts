import { parseArgs } from 'node:util'
import { ConfigError, loadConfig, loadEnvFile, type Config, type EnvFileOutcome } from '../config.js'

/**
 * What every entry point (the server, src/cli/*) does before its work, the
 * same way: `--help` (usage on stdout, exit 0), a one-line error and exit 2
 * for a flag it does not know, the optional `.env` of the working directory,
 * the validated configuration (a message per bad variable, exit 1), and one
 * sentence, not a stack, when DATABASE_URL names a database it cannot use.
 */

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** The value's placeholder in the help, for a string option. */
  value?: string
  description: string
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  /** The program's name in error messages. */
  name: string
  /** How it is run, one form a line. */
  usage: string[]
  /** What it does. */
  description: string
  options: O
  /** What configuration it reads. */
  environment: string
}

export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help and exit' }

const ENV_FILE_NOTE =
  'Variables the environment does not set are read from ./.env when it exists (not under NODE_ENV=test); ' +
  '.env.example lists every variable with its default.'

/** The help text of `spec`. */
export function helpText<O extends Record<string, OptionSpec>> (spec: CommandSpec<O>): string {
  const options = Object.entries({ ...spec.options, help: HELP_OPTION }).map(([name, option]) => {
    const flag = `${option.short ? `-${option.short}, ` : '    '}--${name}${option.type === 'string' ? ` <${option.value ?? 'value'}>` : ''}`
    return [flag, option.description] as const
  })
  const width = Math.max(...options.map(([flag]) => flag.length)) + 2
  return [
    `Usage: ${spec.usage[0]}`,
    ...spec.usage.slice(1).map((line) => `       ${line}`),
    '',
    wrap(spec.description),
    '',
    'Options:',
    ...options.map(([flag, description]) => `  ${flag.padEnd(width)}${description}`),
    '',
    'Environment:',
    wrap(`${spec.environment} ${ENV_FILE_NOTE}`, '  '),
    '',
  ].join('\n')
}

function wrap (text: string, indent = '', width = 80): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  if (line) lines.push(indent + line)
  return lines.join('\n')
}

/**
 * The command line's values. `--help` or `-h` anywhere before a `--` prints
 * the help on stdout and exits 0, whatever else is there; an unknown option,
 * a missing value or a stray argument prints one line on stderr and exits 2.
 */
export function parseCommandLine<O extends Record<string, OptionSpec>> (
  spec: CommandSpec<O>,
  argv: string[] = process.argv.slice(2)
): OptionValues<O> {
  const end = argv.indexOf('--')
  const own = end === -1 ? argv : argv.slice(0, end)
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(helpText(spec))
    process.exit(0)
  }
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, option]) => [name, { type: option.type, ...(option.short ? { short: option.short } : {}) }])
  )
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as OptionValues<O>
  } catch (error) {
    process.stderr.write(`${spec.name}: ${usageProblem(error)} (see --help)\n`)
    process.exit(2)
  }
}

/** parseArgs's error as a short phrase: its own messages run to several lines. */
function usageProblem (error: unknown): string {
  const { code, message } = error as { code?: string; message?: string }
  const text = String(message ?? error)
  const quoted = /'([^']+)'/.exec(text)?.[1]
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? text}`
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(quoted ?? text)}`
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = quoted?.split(' ')[0] ?? 'an option'
      return /does not take an argument/.test(text) ? `${option} takes no value` : `${option} needs a value`
    }
    default:
      return text.split('\n')[0]!
  }
}

/**
 * Reads ./.env (see loadEnvFile in config.ts) into process.env. A file that
 * exists but cannot be read stops the start: exit 1, one line.
 */
export function readEnvFile (): EnvFileOutcome {
  try {
    return loadEnvFile()
  } catch (error) {
    process.stderr.write(`Cannot read .env: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

/** The start log's account of the .env file: its path and the variables' names, never a value. */
export function describeEnvFile (outcome: EnvFileOutcome): { details: Record<string, unknown>; message: string } {
  if (!outcome.read) {
    return outcome.reason === 'absent'
      ? { details: { envFile: outcome.path }, message: 'configuration: the environment only (no .env file)' }
      : { details: { envFile: outcome.path }, message: 'configuration: the environment only (.env is not read under NODE_ENV=test)' }
  }
  return {
    details: { envFile: outcome.path, fromFile: outcome.applied, environmentWins: outcome.overridden },
    message: `configuration: the environment and ${outcome.path} (${outcome.applied.length} variables from the file; the environment wins)`,
  }
}

/** A command-line tool's configuration: ./.env (said on stderr when read), then the validated environment. */
export function cliConfig (): Config {
  const envFile = readEnvFile()
  if (envFile.read) process.stderr.write(`${describeEnvFile(envFile).message}\n`)
  return configOrExit()
}

/** The validated configuration of process.env, or each problem on stderr and exit 1. */
export function configOrExit (): Config {
  try {
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${error.message}\n`)
    process.exit(1)
  }
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name does not resolve',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
}

interface ErrorFields {
  code?: string
  port?: number
  message?: string
  cause?: unknown
  errors?: unknown[]
}

/** `error`, its causes and (an AggregateError's, Node's connection attempts to each address of a name) inner errors. */
function errorChain (error: unknown): ErrorFields[] {
  const chain: ErrorFields[] = []
  const pending = [error]
  while (pending.length > 0 && chain.length < 20) {
    const next = pending.shift()
    if (!next || typeof next !== 'object') continue
    const fields = next as ErrorFields
    chain.push(fields)
    pending.push(fields.cause, ...(Array.isArray(fields.errors) ? fields.errors : []))
  }
  return chain
}

/**
 * One sentence for an error of connecting to the database DATABASE_URL
 * names (unreachable, refused credentials, no such database), naming the
 * variable and the host, never the password; null for any other error (the
 * caller shows it whole). `databaseUrl` unset: the embedded database, null.
 */
export function databaseProblem (error: unknown, databaseUrl: string | undefined): string | null {
  if (!databaseUrl) return null
  let url: URL
  try {
    url = new URL(databaseUrl)
  } catch {
    return null
  }
  const socketDir = url.searchParams.get('host')
  const port = Number(url.searchParams.get('port') || url.port || 5432)
  const where = socketDir?.startsWith('/') ? `the socket in ${socketDir}` : `${socketDir || url.hostname || 'localhost'}:${port}`
  const user = decodeURIComponent(url.username) || 'the default user'
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || user
  // None of the parts above holds the password; a server's message quoted below should not either.
  const password = decodeURIComponent(url.password)
  const sentence = (text: string) => (password.length >= 4 ? text.replaceAll(password, '***') : text)

  for (const fields of errorChain(error)) {
    const reason = fields.code ? NETWORK_ERRORS[fields.code] : undefined
    // A refused connection to another port (a Redis, an SMTP server) is not the database's.
    if (reason && (fields.port === undefined || fields.port === port)) {
      return sentence(`Cannot reach the database that DATABASE_URL names at ${where} (${reason}): check that PostgreSQL runs there, or correct DATABASE_URL.`)
    }
    if (/connection timeout|Connection terminated unexpectedly/i.test(fields.message ?? '')) {
      return sentence(`Cannot reach the database that DATABASE_URL names at ${where} (${fields.message}): check that PostgreSQL runs there, or correct DATABASE_URL.`)
    }
    if (fields.code === '28P01') {
      return sentence(`The database at ${where} refused the password of user "${user}": correct the password in DATABASE_URL.`)
    }
    if (fields.code === '28000') {
      return sentence(`The database at ${where} refused user "${user}" (${fields.message}): correct DATABASE_URL or the server's access rules.`)
    }
    if (fields.code === '3D000') {
      return sentence(`The database "${database}" that DATABASE_URL names does not exist at ${where}: create it, or correct DATABASE_URL.`)
    }
  }
  return null
}
