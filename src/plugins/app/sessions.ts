import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createLoginService, type LoginService } from '../../services/login.js'
import { createMfaChallenges } from '../../services/mfa-challenges.js'
import { createSessionService, type SessionService } from '../../services/sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Sessions: their start, refresh token rotation and end (services/sessions.ts). */
    sessions: SessionService
    /** Logging in with a password, which starts a session (services/login.ts). */
    login: LoginService
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const sessions = createSessionService({
      config,
      repos: app.repos,
      transaction: (work) => app.transaction(work),
      tokens: app.tokens,
      revocations: app.revocations,
      audit: app.audit,
      clock: app.clock,
    })
    app.decorate('sessions', sessions)
    const challenges = createMfaChallenges({ repos: app.repos, clock: app.clock })
    app.decorate(
      'login',
      createLoginService({
        config,
        repos: app.repos,
        sessions,
        audit: app.audit,
        challenges,
        attempts: app.attemptLimits,
      }),
    )
  },
  { name: 'sessions', dependencies: ['db', 'auth', 'revocations', 'security-events', 'rate-limit'] },
)
