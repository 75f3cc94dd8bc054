import { spawn } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** What a program run printed, how it exited, and how long it took. */
export interface ProgramRun {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/**
 * Runs `file args` to its end, collecting stdout and stderr (stdin gets
 * `stdin` and is closed, or is closed at once); killed after 60 s, so a hung
 * program fails its test instead of the suite.
 */
export function runProgram (
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string }
): Promise<ProgramRun> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin.end(options.stdin ?? '')
  })
}

/** The environment of the test process without the variables matching `drop` (a database, a key, tap's own). */
export function environmentWithout (drop: RegExp): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) if (!drop.test(name)) env[name] = value
  return env
}

/** Whether every source file under `root`/src has a build in `root`/dist/src at least as new: then the built program is what npm's scripts run. */
export async function buildIsFresh (root: string): Promise<boolean> {
  try {
    for (const entry of await readdir(join(root, 'src'), { recursive: true })) {
      if (!entry.endsWith('.ts') || entry.endsWith('.d.ts')) continue
      const built = join(root, 'dist/src', entry.replace(/\.ts$/, '.js'))
      if ((await stat(built)).mtimeMs < (await stat(join(root, 'src', entry))).mtimeMs) return false
    }
    return true
  } catch {
    return false // a file not built at all
  }
}
