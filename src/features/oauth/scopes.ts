/** What a scope lets a client do, in words for the consent page (DESIGN §3.15). */
const DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are on this service (your account identifier)',
  profile: 'See your basic profile',
  email: 'See your email address and whether it is confirmed',
  offline_access: 'Keep access to your account while you are not using the app',
}

export function describeScope (scope: string): string {
  return DESCRIPTIONS[scope] ?? `Use your account with the "${scope}" permission`
}
