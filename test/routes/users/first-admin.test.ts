import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildApp } from '../../../src/app.js'
import { ConfigError } from '../../../src/config.js'
import { openDatabase } from '../../../src/db/open.js'
import { parseDatabaseUrl } from '../../../src/db/target.js'
import { bearer, describeEachEngine, login, testConfig } from '../../support/app.js'
import { userRowByEmail, countUsers } from './support.js'

// ------------------------------------------------------------------ the first admin from configuration

const FIRST_ADMIN = { email: 'Root.Admin@Example.com', password: 'first admin password, long' }

describeEachEngine(
  'the first admin from FIRST_ADMIN_EMAIL / FIRST_ADMIN_PASSWORD',
  (ctx) => {
    test('is created at start, verified, and logs in with admin powers', async () => {
      const row = await userRowByEmail(ctx.app, FIRST_ADMIN.email)
      assert.ok(row, 'no first admin')
      assert.equal(row.email, FIRST_ADMIN.email.toLowerCase())
      assert.equal(row.role, 'admin')
      assert.equal(row.is_active, true)
      assert.equal(row.email_verified, true)
      assert.equal(row.name, 'admin')
      assert.match(row.password_hash, /^\$argon2id\$/)

      const token = await login(ctx.app, FIRST_ADMIN.email, FIRST_ADMIN.password)
      const list = await ctx.app.inject({ method: 'GET', url: '/users/', headers: bearer(token) })
      assert.equal(list.statusCode, 200, list.body)
    })

    test('a second app on the same database neither adds an admin nor changes the password', async () => {
      const before = await ctx.app.db.selectFrom('users').selectAll().orderBy('id').execute()
      const second = await buildApp(
        testConfig({
          DATABASE_URL: ctx.databaseUrl,
          FIRST_ADMIN_EMAIL: FIRST_ADMIN.email.toUpperCase(),
          FIRST_ADMIN_PASSWORD: 'a different password entirely',
        }),
        { logger: false },
      )
      try {
        await second.ready()
        assert.deepEqual(await second.db.selectFrom('users').selectAll().orderBy('id').execute(), before)
        assert.ok(await login(second, FIRST_ADMIN.email, FIRST_ADMIN.password))
        await assert.rejects(login(second, FIRST_ADMIN.email, 'a different password entirely'), /401/)
      } finally {
        await second.close()
      }
    })

    // The app is given its own connection here, so that it can be closed when the start fails.
    async function startFails(env: Record<string, string>, variable: RegExp) {
      const database = openDatabase(parseDatabaseUrl(ctx.databaseUrl))
      try {
        await assert.rejects(
          async () => {
            const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), {
              logger: false,
              database,
            })
            await app.ready()
          },
          (error: unknown) => error instanceof ConfigError && variable.test(error.message),
        )
      } finally {
        await database.db.destroy()
      }
    }

    test('a FIRST_ADMIN_PASSWORD that breaks the password rules stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        {
          FIRST_ADMIN_EMAIL: 'short@example.com',
          FIRST_ADMIN_PASSWORD: 'short',
          FIRST_ADMIN_NAME: 'short-admin',
        },
        /^FIRST_ADMIN_PASSWORD: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })

    test('a FIRST_ADMIN_NAME longer than a name may be stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        {
          FIRST_ADMIN_EMAIL: 'long-name@example.com',
          FIRST_ADMIN_PASSWORD: 'long enough password',
          FIRST_ADMIN_NAME: 'n'.repeat(65),
        },
        /^FIRST_ADMIN_NAME: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })

    test('a FIRST_ADMIN_NAME taken by another account stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        { FIRST_ADMIN_EMAIL: 'another@example.com', FIRST_ADMIN_PASSWORD: 'long enough password' },
        /^FIRST_ADMIN_NAME: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })
  },
  { env: { FIRST_ADMIN_EMAIL: FIRST_ADMIN.email, FIRST_ADMIN_PASSWORD: FIRST_ADMIN.password } },
)
