import type { RetentionTarget } from './retention/targets.js'

/**
 * What a capability adds to the service's shared registries, declared in its
 * own `catalogue.ts` and listed once in features/catalogues.ts: its error
 * codes and their statuses (errors.ts), its audit event types
 * (shared/audit.ts), the purposes of the keys it derives from SECRET_KEY
 * (shared/derived-keys.ts), and what retention deletes of its tables
 * (features/retention). A catalogue imports nothing of the service: the error
 * model, which every module imports, is built from it.
 */
export interface Catalogue {
  errors?: Readonly<Record<string, number>>
  auditEvents?: readonly string[]
  keyPurposes?: readonly string[]
  retention?: readonly RetentionTarget[]
}

/** Keeps a catalogue's literal types (its codes, events and purposes name themselves in the registries' types). */
export function defineCatalogue<const C extends Catalogue> (catalogue: C): C {
  return catalogue
}
