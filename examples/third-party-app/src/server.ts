import { buildThirdPartyApp, type ThirdPartyConfig } from './app.js'

/**
 * Starts the example third-party app from environment variables: ISSUER,
 * CLIENT_ID, CLIENT_SECRET (absent for a public client), PORT (3200), HOST
 * (127.0.0.1), REDIRECT_URI (http://localhost:PORT/callback),
 * POST_LOGOUT_REDIRECT_URI (the redirect URI's origin + /), SCOPE
 * (openid email), LOG_LEVEL (info). See the README.
 */
function loadConfig (env: NodeJS.ProcessEnv = process.env): ThirdPartyConfig & { port: number; host: string } {
  const problems: string[] = []
  const url = (name: string, fallback?: string): string => {
    const value = env[name] || fallback
    if (!value) problems.push(`${name} is required`)
    else if (!/^https?:\/\/[^\s]+$/.test(value) || !URL.canParse(value)) problems.push(`${name}: an http(s) URL, got "${value}"`)
    return value ?? ''
  }
  const rawPort = env.PORT || '3200'
  const port = Number(rawPort)
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`PORT: an integer from 0 to 65535, got "${rawPort}"`)
  const issuer = url('ISSUER')
  const clientId = env.CLIENT_ID ?? ''
  if (!clientId) problems.push('CLIENT_ID is required (the client_id the platform gave the registration)')
  const redirectUri = url('REDIRECT_URI', `http://localhost:${port}/callback`)
  const postLogoutRedirectUri = url('POST_LOGOUT_REDIRECT_URI', URL.canParse(redirectUri) ? `${new URL(redirectUri).origin}/` : undefined)
  if (problems.length > 0) throw new Error(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  return {
    port,
    host: env.HOST || '127.0.0.1',
    issuer,
    clientId,
    clientSecret: env.CLIENT_SECRET || undefined,
    redirectUri,
    postLogoutRedirectUri,
    scope: env.SCOPE || 'openid email',
    logLevel: env.LOG_LEVEL || 'info',
  }
}

async function main () {
  let config
  try {
    config = loadConfig()
  } catch (error) {
    console.error((error as Error).message)
    process.exit(1)
  }
  const app = await buildThirdPartyApp(config)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.close().then(
        () => process.exit(0),
        () => process.exit(1)
      )
    })
  }
  await app.listen({ port: config.port, host: config.host })
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
