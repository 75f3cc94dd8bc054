# syntax=docker/dockerfile:1
# Node 24 LTS in both stages: the recommended runtime (README; package.json's
# engines gives the floor), the one .ci/run tests against Postgres and Redis.
# Keep the two tags alike: dist/ is compiled in one stage and runs in the other.

# ---- build: compile TypeScript (including the generated Prisma client) to dist/
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Dependencies first, in their own layer, so source edits reuse it.
# --ignore-scripts: the root package's postinstall (generate + build) needs the
# sources copied below, and dependencies' install scripts are not needed:
# bcrypt ships prebuilt binaries, and @prisma/engines would only download a
# schema engine that neither generate (see scripts/prisma-generate.mjs) nor
# the running service uses.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY src ./src
COPY dashboard ./dashboard
# The same two steps as `npm ci`'s postinstall: prisma generate without the
# schema-engine download, then `npm run build`: tsc → dist/ (dist/src/generated/prisma
# included) and vite → dist/dashboard (the admin dashboard's bundle).
RUN node scripts/prisma-generate.mjs && npm run build

# ---- runtime: production dependencies, compiled code, migrations
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY --from=build /app/dist ./dist
# The admin dashboard's bundle, served at /dashboard/ (src/features/dashboard/plugin.ts
# reads it from dist/dashboard; named here so it is not lost if the line above narrows).
COPY --from=build /app/dist/dashboard ./dist/dashboard
# Applied by the service at start (src/db/migrate.ts finds them from package.json's folder).
COPY prisma/migrations ./prisma/migrations
# The email templates, read at start from the package's folder (src/features/email/email-templates.ts).
COPY src/templates ./src/templates

# DATA_DIR (default ./.data): the embedded database when DATABASE_URL is unset.
# Mount a volume here to keep it; production normally sets DATABASE_URL instead.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node

EXPOSE 3000
# No curl in the slim image: Node's own fetch does the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The README's start command. `docker stop` sends SIGTERM to npm (PID 1), which
# passes it to its child only: the start script must `exec` the server
# (`exec node [flags] dist/src/server.js`), or an intermediate `sh -c` takes the signal,
# dies, and the server is killed instead of shutting down gracefully.
CMD ["npm", "start"]
