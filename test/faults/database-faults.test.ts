/**
 * A hung database, injected for real: a TCP proxy between the app and PostgreSQL (or MariaDB) is
 * frozen (bytes neither answered nor refused, as in a network partition) and then thawed.
 *
 * The guarantees (docs/security.md): every database call is bounded in time, so a hung
 * database gives 503 problem+json with Retry-After within seconds, never a request that waits for
 * as long as the hang; the instance recovers by itself when the database is back; and the outage is
 * told in one log line when it starts and one when it ends, not one per failed request.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import pg from 'pg'
import { buildApp } from '../../src/app.js'
import {
  assertProblem,
  captureLog,
  registerAndLogin,
  testConfig,
  testEngines,
  uniqueSku,
  type TestDatabase,
} from '../support/app.js'
import { until } from '../support/processes.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

/** Small bounds, so that the test is quick; the defaults are 5 s each. */
const QUERY_TIMEOUT_MS = 1000
const CONNECT_TIMEOUT_MS = 1000
/**
 * A request must be answered well within this while the link is frozen. Far above the bounds
 * (a request makes a few calls, each bounded), far below "as long as the hang": the proxy stays
 * frozen until every request has been answered or this has passed.
 */
const ANSWER_DEADLINE_MS = 20_000

/** The response, or a rejection naming the request when it is not answered by the deadline. */
async function answered(what: string, pending: Promise<LightMyRequestResponse>) {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${ANSWER_DEADLINE_MS} ms`)),
      ANSWER_DEADLINE_MS,
    )
  })
  try {
    return await Promise.race([pending, deadline])
  } finally {
    clearTimeout(timer)
  }
}

for (const engine of testEngines().filter(({ name }) => name !== 'sqlite')) {
  describe(`a frozen link to the database [${engine.name}]`, { skip: engine.skip }, () => {
    let database: TestDatabase | undefined
    let proxy: TcpProxy | undefined
    let app: FastifyInstance | undefined
    const log = captureLog()

    before(async () => {
      database = await engine.create()
      proxy = await startTcpProxy(database.url)
      app = await buildApp(
        testConfig({
          DATABASE_URL: proxy.rewrite(database.url),
          DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
          DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
          LOG_LEVEL: 'info',
        }),
        { logger: log.logger },
      )
      await app.ready()
    })
    after(async () => {
      proxy?.resume()
      await app?.close()
      await proxy?.close()
      await database?.drop()
    })

    test(
      'requests answer 503 with Retry-After within seconds, the app recovers, and the log says it twice',
      { timeout: 120_000 },
      async () => {
        const user = await registerAndLogin(app!)
        const created = await app!.inject({
          method: 'POST',
          url: '/product/',
          headers: user.headers,
          payload: { product_id: uniqueSku(), name: 'Before the freeze', price: 100 },
        })
        assert.equal(created.statusCode, 201, created.body)
        const productUrl = created.headers.location as string
        const linesBefore = log.lines.length

        proxy!.pause()
        let responses: LightMyRequestResponse[]
        try {
          // More requests at once than the pool has connections (10), reads and writes.
          const requests = Array.from({ length: 12 }, (_, i) =>
            i % 3 === 0
              ? answered(
                  `POST /product/ #${i}`,
                  app!.inject({
                    method: 'POST',
                    url: '/product/',
                    headers: user.headers,
                    payload: { product_id: uniqueSku(), name: 'During the freeze', price: i },
                  }),
                )
              : answered(
                  `GET ${productUrl} #${i}`,
                  app!.inject({ method: 'GET', url: productUrl, headers: user.headers }),
                ),
          )
          responses = await Promise.all(requests)
        } finally {
          proxy!.resume()
        }
        for (const response of responses) {
          const problem = assertProblem(response, 503)
          assert.match(problem.detail, /database/)
          assert.ok(Number(response.headers['retry-after']) > 0, 'Retry-After')
          assert.doesNotMatch(response.body, /timeout|Query|ECONN|at /, 'no internal detail')
        }

        // Thawed: the same instance serves again, without a restart.
        await until(
          async () =>
            (await app!.inject({ method: 'GET', url: productUrl, headers: user.headers })).statusCode === 200,
          'the app serves again once the database answers',
          30_000,
        )
        const after = await app!.inject({
          method: 'POST',
          url: '/product/',
          headers: user.headers,
          payload: { product_id: uniqueSku(), name: 'After the freeze', price: 1 },
        })
        assert.equal(after.statusCode, 201, after.body)

        // One line when it went away, one when it came back; no error line per failed request.
        await until(
          () =>
            log.lines.slice(linesBefore).some((line) => line.msg.startsWith('database is available again')),
          'the line saying the database is back',
        )
        const outage = log.lines.slice(linesBefore)
        const errors = outage.filter((line) => line.level >= 50)
        assert.equal(errors.length, 1, JSON.stringify(errors, null, 1))
        assert.match(errors[0]!.msg, /^database is unavailable/)
        assert.equal(errors[0]!.dependency, 'database')
        assert.equal(errors[0]!.stack ?? (errors[0]!.err as { stack?: string } | undefined)?.stack, undefined)
        const back = outage.filter((line) => line.msg.startsWith('database is available again'))
        assert.equal(back.length, 1)
        assert.ok(Number(back[0]!.failed_calls) >= responses.length, JSON.stringify(back[0]))
      },
    )
  })
}

/** An admin connection to the server TEST_POSTGRES_URL or TEST_MYSQL_URL names. */
function adminOf(name: 'postgres' | 'mysql') {
  return name === 'postgres'
    ? new Kysely<unknown>({
        dialect: new PostgresDialect({
          pool: new pg.Pool({ connectionString: process.env.TEST_POSTGRES_URL, max: 1 }),
        }),
      })
    : new Kysely<unknown>({
        dialect: new MysqlDialect({
          pool: createPool({ uri: process.env.TEST_MYSQL_URL!, connectionLimit: 1 }),
        }),
      })
}

for (const engine of testEngines().filter(({ name }) => name !== 'sqlite')) {
  describe(`a database server that refuses writes [${engine.name}]`, { skip: engine.skip }, () => {
    const name = engine.name as 'postgres' | 'mysql'
    let database: TestDatabase | undefined
    let admin: Kysely<unknown> | undefined
    let app: FastifyInstance | undefined
    let databaseName = ''
    // MariaDB's read_only spares accounts with READ ONLY ADMIN (root): the app gets its own user.
    const appUser = `fa_ro_${Date.now().toString(36)}`

    /** PostgreSQL applies a database's default to new sessions: the app's are ended, it reconnects. */
    async function setReadOnly(on: boolean) {
      if (name === 'postgres') {
        await sql`alter database ${sql.id(databaseName)} set default_transaction_read_only = ${sql.raw(on ? 'on' : 'off')}`.execute(
          admin!,
        )
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${databaseName} and pid <> pg_backend_pid()`.execute(
          admin!,
        )
      } else {
        await sql`set global read_only = ${sql.raw(on ? 'on' : 'off')}`.execute(admin!)
      }
    }

    before(async () => {
      database = await engine.create()
      admin = adminOf(name)
      const url = new URL(database.url)
      databaseName = decodeURIComponent(url.pathname.slice(1))
      if (name === 'mysql') {
        await sql`create user ${sql.lit(appUser)}@'%' identified by 'read-only-test'`.execute(admin)
        await sql`grant all on ${sql.id(databaseName)}.* to ${sql.lit(appUser)}@'%'`.execute(admin)
        url.username = appUser
        url.password = 'read-only-test'
      }
      app = await buildApp(testConfig({ DATABASE_URL: url.toString() }), { logger: false })
      await app.ready()
    })
    after(async () => {
      await setReadOnly(false).catch(() => {})
      await app?.close()
      if (name === 'mysql')
        await sql`drop user if exists ${sql.lit(appUser)}@'%'`.execute(admin!).catch(() => {})
      await admin?.destroy()
      await database?.drop()
    })

    test(
      'writes answer 503 with Retry-After, reads go on, /readyz is 503; all back afterwards',
      { timeout: 60_000 },
      async () => {
        const user = await registerAndLogin(app!)
        const create = () =>
          app!.inject({
            method: 'POST',
            url: '/product/',
            headers: user.headers,
            payload: { product_id: uniqueSku(), name: 'Read-only', price: 5 },
          })
        await setReadOnly(true)
        try {
          // The first request after PostgreSQL ended the sessions may meet a closed connection
          // (also a 503); then the server's refusal. Never a 500, never a 201.
          let refusal: LightMyRequestResponse | undefined
          await until(async () => {
            const response = await create()
            assertProblem(response, 503)
            refusal = response
            return /cannot store data/.test(response.json<{ detail: string }>().detail)
          }, 'a write refused by the read-only server')
          assert.ok(Number(refusal!.headers['retry-after']) > 0)
          const list = await app!.inject({ method: 'GET', url: '/product/', headers: user.headers })
          assert.equal(list.statusCode, 200, list.body)
          assert.deepEqual(list.json<{ items: unknown[] }>().items, [], 'nothing was stored')
          assertProblem(await app!.inject({ method: 'GET', url: '/readyz' }), 503)
        } finally {
          await setReadOnly(false)
        }
        await until(async () => (await create()).statusCode === 201, 'writes succeed again')
        // Ready again as soon as the monitor's probe (a commit, once a second) gets through.
        await until(
          async () => (await app!.inject({ method: 'GET', url: '/readyz' })).statusCode === 200,
          '/readyz ready again',
        )
      },
    )
  })
}
