// Runs `prisma generate` without the schema-engine download that fails
// offline (see ../shared/ENVIRONMENT.md): generate works from WebAssembly as
// soon as PRISMA_SCHEMA_ENGINE_BINARY names any executable.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const env = { ...process.env }
env.PRISMA_SCHEMA_ENGINE_BINARY ??= fileURLToPath(new URL('./no-schema-engine.sh', import.meta.url))
env.PRISMA_HIDE_UPDATE_MESSAGE = '1'
const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], { stdio: 'inherit', env })
process.exit(result.status ?? 1)
