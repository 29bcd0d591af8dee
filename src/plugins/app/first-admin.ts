import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { ensureFirstAdmin } from '../../services/first-admin.js'

/** The first admin, from FIRST_ADMIN_EMAIL/FIRST_ADMIN_PASSWORD (services/first-admin.ts). */
export default fp<{ config: Config }>(
  async (app, { config }) => {
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
