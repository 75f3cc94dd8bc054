import { defineConfig } from 'prisma/config'

// The datasource URL is only read by Prisma CLI commands that talk to a
// database (migrate status/deploy on a connected machine); generate needs none.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/postgres' },
})
