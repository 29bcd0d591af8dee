import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { assertProblem, testConfig, testEngines, type TestDatabase } from '../support/app.js'
import { until } from '../support/processes.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

/**
 * /readyz answers within READINESS_TIMEOUT_MS whatever its checks wait on: a frozen link
 * to PostgreSQL or Redis (a paused TCP proxy in between) gives a 503 at the deadline.
 */

const READINESS_TIMEOUT_MS = 300
/** A safety net only: what a probe that hangs would otherwise do to the test. */
const PROBE_SAFETY_NET_MS = 20_000

/** GET /readyz through inject, failing (instead of hanging) when it gets no answer at all. */
async function probe(app: FastifyInstance) {
  let timer: NodeJS.Timeout | undefined
  const safetyNet = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`/readyz gave no answer within ${PROBE_SAFETY_NET_MS} ms`)),
      PROBE_SAFETY_NET_MS,
    )
  })
  try {
    return await Promise.race([app.inject({ url: '/readyz' }), safetyNet])
  } finally {
    clearTimeout(timer)
  }
}

/** A probe while the link is frozen: a 503 problem with Retry-After that names what hangs. */
async function assertTimedOut(app: FastifyInstance, what: RegExp) {
  const answer = await probe(app)
  const problem = assertProblem(answer, 503)
  assert.match(problem.detail, what)
  assert.match(problem.detail, new RegExp(`did not answer within ${READINESS_TIMEOUT_MS} ms`))
  assert.ok(Number(answer.headers['retry-after']) > 0, 'Retry-After')
}

const postgres = testEngines().find((engine) => engine.name === 'postgres')!

describe('/readyz: a frozen link to PostgreSQL', { skip: postgres.skip }, () => {
  let database: TestDatabase | undefined
  let proxy: TcpProxy | undefined
  let app: FastifyInstance | undefined
  after(async () => {
    // Resumed first: the queries it held then end, and the app's pool can close.
    proxy?.resume()
    await app?.close()
    await proxy?.close()
    await database?.drop()
  })

  test('gives 503 at the readiness deadline, not when the query ends, and 200 once the link is back', async () => {
    database = await postgres.create()
    proxy = await startTcpProxy(database.url)
    app = await buildApp(
      testConfig({
        DATABASE_URL: proxy.rewrite(database.url),
        READINESS_TIMEOUT_MS: String(READINESS_TIMEOUT_MS),
        // Far beyond the test: the readiness deadline is what must answer.
        DATABASE_QUERY_TIMEOUT_MS: '600000',
      }),
      { logger: false },
    )
    await app.ready()
    assert.equal((await probe(app)).statusCode, 200)

    proxy.pause()
    await assertTimedOut(app, /^The database/)
    // Another probe while the first check still hangs: its own deadline, the same answer.
    await assertTimedOut(app, /^The database/)
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the process itself is alive')

    proxy.resume()
    const ready = app
    await until(async () => (await probe(ready)).statusCode === 200, 'ready again once the link is back')
  })
})

const REDIS_URL = process.env.TEST_REDIS_URL

describe('/readyz: a frozen link to Redis', { skip: REDIS_URL ? false : 'TEST_REDIS_URL is not set' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-readiness-'))
  let proxy: TcpProxy | undefined
  let app: FastifyInstance | undefined
  after(async () => {
    proxy?.resume()
    await app?.close()
    await proxy?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('gives 503 at the readiness deadline, and 200 once the link is back', async () => {
    proxy = await startTcpProxy(REDIS_URL!)
    app = await buildApp(
      testConfig({
        DATABASE_URL: `sqlite:///${path.join(dir, 'ready.db')}`,
        REDIS_URL: proxy.rewrite(REDIS_URL!),
        REDIS_KEY_PREFIX: `fastauth-readiness-${randomUUID()}:`,
        READINESS_TIMEOUT_MS: String(READINESS_TIMEOUT_MS),
      }),
      { logger: false },
    )
    await app.ready()
    assert.equal((await probe(app)).statusCode, 200)

    proxy.pause()
    await assertTimedOut(app, /^Redis/)

    proxy.resume()
    const ready = app
    await until(async () => (await probe(ready)).statusCode === 200, 'ready again once the link is back')
  })
})
