import fp from 'fastify-plugin'
import { createRevocationList, type RevocationList } from '../../auth/revocation.js'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The sessions revoked recently: what every authenticated request is checked against. */
    revocations: RevocationList
  }
}

/**
 * The revocation list of this instance, following the database (and Redis when configured). It
 * starts from the database: a restarted process must not forget a logout, so it does not start
 * without it.
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    const list = createRevocationList({
      // A revoked session's access tokens live at most this long (plus a minute of clock skew).
      ttlMs: (config.accessTokenExpireMinutes * 60 + 60) * 1000,
      revokedSince: async (since) =>
        (await app.repos.sessions.revokedSince(since)).map((row) => ({
          sessionId: row.id,
          revokedAt: row.revoked_at,
        })),
      onSyncFailure: (error) => app.dbMonitor.failed(error),
      now: () => app.clock.now(),
      redis:
        app.redis && app.redisMonitor
          ? { client: app.redis, keyPrefix: config.redisKeyPrefix, monitor: app.redisMonitor }
          : undefined,
    })
    await list.start()
    app.decorate('revocations', list)
    app.addHook('onClose', async () => list.close())
  },
  { name: 'revocations', dependencies: ['db', 'redis'] },
)
