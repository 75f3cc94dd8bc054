#!/bin/sh
# Stand-in for Prisma's schema engine, which `prisma generate` would otherwise
# download (unreachable offline). Generate never runs it; migrations are
# applied by src/db/migrate.ts instead. See README "Migrations".
echo "Prisma's schema engine is not installed here; use npm run db:migrate" >&2
exit 1
