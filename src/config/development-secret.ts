import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Refuse } from './readers.js'

/**
 * Development convenience: a random key generated once and kept in the data folder, so tokens
 * survive restarts without anyone choosing a secret. Never used in production.
 */
export function developmentSecret(
  dataDir: string,
  refuse: Refuse,
  onGenerated?: (file: string) => void,
): string {
  const file = path.join(dataDir, 'secret_key')
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim()
    if (Buffer.byteLength(stored) >= 32) return stored
  }
  try {
    mkdirSync(dataDir, { recursive: true })
    const generated = randomBytes(48).toString('base64url')
    writeFileSync(file, `${generated}\n`, { mode: 0o600 })
    onGenerated?.(file)
    return generated
  } catch (error) {
    return refuse(
      `not set, and a development key cannot be written to ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); set SECRET_KEY or DATA_DIR`,
    )
  }
}
