import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'

/**
 * Every module under src/ imports on its own, in a fresh module graph (a
 * worker thread each, with the test's own loader): none may depend on
 * another module having been imported first. An import cycle that works
 * only in one order (a grant importing its registry, which imports the
 * grant) throws "Cannot access … before initialization" here.
 */

const SRC = join(PROJECT_ROOT, 'src')
/**
 * Not imported: generated code, and the entry points, which start what they
 * are for on import (the server, the CLIs); their own tests run them.
 */
const SKIPPED = [join(SRC, 'generated'), join(SRC, 'cli'), join(SRC, 'server.ts')]

function modules (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (SKIPPED.includes(path)) return []
    if (entry.isDirectory()) return modules(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Imports `file` in a new worker: the error's message, or null. */
function importAlone (file: string): Promise<string | null> {
  // A worker's module loader starts bare: it registers tsx itself, as the test's process did.
  const code = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(pathToFileURL(file).href)}) })
    .then(() => process.exit(0), (error) => { console.error(String(error && error.stack || error)); process.exit(1) })`
  return new Promise((resolve) => {
    const worker = new Worker(code, { eval: true, stderr: true, stdout: true, env: { ...process.env, NODE_ENV: 'test' } })
    let stderr = ''
    worker.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    worker.on('error', (error) => resolve(String(error.stack ?? error)))
    worker.on('exit', (code) => resolve(code === 0 ? null : stderr.trim() || `exit ${code}`))
  })
}

const files = modules(SRC)
t.ok(files.length > 50, `${files.length} modules`)
// Each worker loads tsx and its module's whole graph (a second or more for a
// plugin, which reaches the Prisma client): about 170 modules on two busy
// cores outgrow tap's default two minutes.
t.setTimeout(360_000)
// Three workers at a time: each loads tsx and its module graph, mostly CPU.
const outcomes = new Map<string, Promise<string | null>>()
const queue = [...files]
const next = (): Promise<void> => {
  const file = queue.shift()
  if (file === undefined) return Promise.resolve()
  const outcome = importAlone(file)
  outcomes.set(file, outcome)
  return outcome.then(next)
}
const done = Promise.all([next(), next(), next()])
for (const file of files) {
  t.test(relative(PROJECT_ROOT, file), async (t) => {
    while (!outcomes.has(file)) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await outcomes.get(file), null, 'imports on its own')
  })
}
await done
