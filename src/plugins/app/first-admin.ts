import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../../config.js'
import { createAccount } from '../../auth/accounts.js'
import { normalizeEmail } from '../../auth/identifiers.js'
import { DomainError } from '../../services/errors.js'

/**
 * Creates the first admin from FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD, once: when an account
 * with that email exists already, it is left exactly as it is (its password is not reset).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    const { firstAdminEmail: email, firstAdminPassword: password, firstAdminName: name } = config
    if (!email || !password) return
    const existing = await app.repos.users.findConflict(normalizeEmail(email), undefined)
    if (existing) return
    try {
      const admin = await createAccount(
        app.repos,
        { name, email, password, role: 'admin', emailVerified: true },
        config.passwordMinLength,
      )
      app.log.info({ userId: admin.id }, 'created the first admin from FIRST_ADMIN_EMAIL')
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      if (error.kind === 'conflict') {
        // Another instance starting at the same moment created it: that is the same outcome.
        if (await app.repos.users.findConflict(normalizeEmail(email), undefined)) return
        throw new ConfigError(`FIRST_ADMIN_NAME: "${name}" is taken by another account; choose another name`)
      }
      const issue = error.facts.issues?.[0]
      const variable = issue?.field === 'name' ? 'FIRST_ADMIN_NAME' : 'FIRST_ADMIN_PASSWORD'
      throw new ConfigError(`${variable}: ${issue?.message ?? error.detail}`)
    }
  },
  { name: 'first-admin', dependencies: ['db'] },
)
