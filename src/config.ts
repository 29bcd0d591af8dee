/**
 * The environment → the typed, validated Config. Every variable is declared once, in
 * config/variables/ (name, kind of value, default, rules, the field it fills, its description);
 * parsing, the error messages, .env.example and the README table all come from there.
 */
import { existsSync, readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { ConfigError } from './config/error.js'
import type { Env } from './config/load.js'

export { ConfigError } from './config/error.js'
export {
  JWT_ALGORITHMS,
  type Config,
  type DatabaseOptions,
  type IdentityProviderConfig,
  type JwtAlgorithm,
} from './config/fields.js'
export type { LoadOptions } from './config/declare.js'
export { loadConfig } from './config/load.js'

/**
 * Reads `.env` (when present) beneath the real environment: a variable set in the
 * environment always wins over the file.
 */
export function readEnvFile(file = '.env'): Env {
  if (!existsSync(file)) return {}
  try {
    return parseEnv(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`${file}: cannot be read (${(error as Error).message})`)
  }
}
