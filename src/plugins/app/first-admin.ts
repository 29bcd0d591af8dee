import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { ensureFirstAdmin } from '../../services/first-admin.js'
import accountsPlugin from './accounts.js'

/** The first admin, from FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD (services/first-admin.ts). */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    // The account services are wired here, after the sessions, audit and mail they are built over
    // (app.ts registers this plugin after those); the first admin does not need them.
    await app.register(accountsPlugin, { config })
    await ensureFirstAdmin(
      app.repos,
      {
        email: config.firstAdminEmail,
        password: config.firstAdminPassword,
        name: config.firstAdminName,
        passwordMinLength: config.passwordMinLength,
      },
      app.log,
    )
  },
  { name: 'first-admin', dependencies: ['db'] },
)
