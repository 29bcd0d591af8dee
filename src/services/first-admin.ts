import { normalizeEmail } from '../auth/identifiers.js'
import { ConfigError } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import { createAccount } from './accounts.js'
import type { ServiceLogger } from './context.js'
import { DomainError } from './errors.js'

export interface FirstAdminSettings {
  /** FIRST_ADMIN_EMAIL, FIRST_ADMIN_PASSWORD and FIRST_ADMIN_NAME. */
  email: string | undefined
  password: string | undefined
  name: string
  passwordMinLength: number
}

/**
 * Creates the first admin from FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD, once: when an account
 * with that email exists already, it is left exactly as it is (its password is not reset). A
 * setting that breaks an account rule is a ConfigError naming the variable.
 */
export async function ensureFirstAdmin(
  repos: Repositories,
  { email, password, name, passwordMinLength }: FirstAdminSettings,
  log: ServiceLogger,
): Promise<void> {
  if (!email || !password) return
  const existing = await repos.users.findConflict(normalizeEmail(email), undefined)
  if (existing) return
  try {
    const admin = await createAccount(
      repos,
      { name, email, password, role: 'admin', emailVerified: true },
      passwordMinLength,
    )
    log.info({ userId: admin.id }, 'created the first admin from FIRST_ADMIN_EMAIL')
  } catch (error) {
    if (!(error instanceof DomainError)) throw error
    if (error.kind === 'conflict') {
      // Another instance starting at the same moment created it: that is the same outcome.
      if (await repos.users.findConflict(normalizeEmail(email), undefined)) return
      throw new ConfigError(`FIRST_ADMIN_NAME: "${name}" is taken by another account; choose another name`)
    }
    // createAccount's only other refusal is a 422, which always lists its issue.
    const issue = error.facts.issues![0]!
    const variable = issue.field === 'name' ? 'FIRST_ADMIN_NAME' : 'FIRST_ADMIN_PASSWORD'
    throw new ConfigError(`${variable}: ${issue.message}`)
  }
}
