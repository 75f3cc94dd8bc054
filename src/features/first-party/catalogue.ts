import { defineCatalogue } from '../catalogue.js'

/** First-party sign-in through the authorization challenge endpoint (draft-ietf-oauth-first-party-apps, DESIGN §3.16). */
export const firstPartyCatalogue = defineCatalogue({
  errors: {
    // The sign-in needs another step: the answer carries auth_session and the factors left (draft §5.2.2).
    insufficient_authorization: 403,
    // An auth_session that is unknown, expired, spent, or another client's or transport's.
    invalid_session: 400,
  },
})
