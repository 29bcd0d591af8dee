import fp from 'fastify-plugin'
import { ConfigError, type Config } from '../../config.js'
import { normalizeEmail } from '../../auth/identifiers.js'
import { createAccount } from '../../services/accounts.js'
import { DomainError } from '../../services/errors.js'
import accountsPlugin from './accounts.js'

/**
 * Creates the first admin from FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD, once: when an account
 * with that email exists already, it is left exactly as it is (its password is not reset).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    // The account services are wired here, after the sessions, audit and mail they are built over
    // (app.ts registers this plugin after those); the first admin does not need them.
    await app.register(accountsPlugin, { config })
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
