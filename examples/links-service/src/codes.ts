import { randomInt } from 'node:crypto'

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
export const CODE_LENGTH = 7
export const CODE_PATTERN = `^[0-9A-Za-z]{${CODE_LENGTH}}$`

/**
 * A random base62 short code: 7 characters, 62^7 ≈ 3.5 × 10^12 codes, each
 * character drawn uniformly (crypto.randomInt has no modulo bias), so codes
 * can be neither guessed in sequence nor enumerated.
 */
export function generateCode (): string {
  let code = ''
  for (let i = 0; i < CODE_LENGTH; i++) code += BASE62[randomInt(62)]
  return code
}
