import { defineCatalogue } from '../catalogue.js'

export const signingKeysCatalogue = defineCatalogue({
  // Encrypts the private part of each signing key at rest.
  keyPurposes: ['signingKeyEncryption'],
})
