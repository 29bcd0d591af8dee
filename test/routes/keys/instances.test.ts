/**
 * Instances of one service on one database, configured at different moments: each verifies and
 * signs with the keys the others made, and none starts with a key it cannot use.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import {
  bearer,
  describeEachEngine,
  registerAndLogin,
  testConfig,
  type EngineContext,
} from '../../support/app.js'
import { TestClock } from '../../support/clock.js'

const clock = new TestClock()

async function instance(ctx: EngineContext, env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), { logger: false, clock })
  await app.ready()
  return app
}

describeEachEngine(
  'signing keys: instances of one service',
  (ctx) => {
    test('an instance still on the old JWT_ALGORITHM verifies tokens of the new one’s key at once', async () => {
      const old = await instance(ctx, { JWT_ALGORITHM: 'ES256' })
      const upgraded = await instance(ctx, { JWT_ALGORITHM: 'EdDSA' })
      try {
        const user = await registerAndLogin(upgraded)
        const answer = await old.inject({ method: 'GET', url: '/current-user', headers: bearer(user.token) })
        assert.equal(answer.statusCode, 200, answer.body)
      } finally {
        await Promise.all([old.close(), upgraded.close()])
      }
    })

    test('a signing key that no longer decrypts (SECRET_KEY changed) stops the start with one clear line', async () => {
      const first = await instance(ctx, { JWT_ALGORITHM: 'EdDSA' })
      await first.close()
      await assert.rejects(
        instance(ctx, {
          JWT_ALGORITHM: 'EdDSA',
          SECRET_KEY: 'another-secret-key-that-is-long-enough-0123456789',
        }),
        /^Error: The signing key in the database cannot be decrypted: SECRET_KEY or DATA_ENCRYPTION_KEY changed/,
      )
    })
  },
  { build: { clock } },
)
