import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely'
import { createPool as createMysqlPool, type Pool as MysqlPool, type PoolConnection } from 'mysql2'
import pg from 'pg'
import { register as globalRegistry } from 'prom-client'
import { buildApp } from '../../../src/app.js'
import { ConfigError, loadConfig } from '../../../src/config.js'
import type { Database } from '../../../src/db/database.js'
import type { DatabaseHandle } from '../../../src/db/open.js'
import { parseDatabaseUrl } from '../../../src/db/target.js'
import { poolState } from '../../../src/plugins/app/metrics.js'
import { AUTH_EVENTS } from '../../../src/services/audit.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  testEngines,
  uniqueSku,
  type TestDatabase,
} from '../../support/app.js'

const METRICS_TOKEN = 'metrics-scraper-token-0123456789abcdef'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(match, `not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[name!] = value!
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** The value of the one sample with this name and these labels (among others), or undefined. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  )
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
  return found[0]?.value
}

async function scrape(app: FastifyInstance): Promise<Sample[]> {
  const response = await app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
  assert.equal(response.statusCode, 200, response.body)
  return parseExposition(response.body)
}

describeEachEngine(
  'GET /metrics',
  (ctx) => {
    test('without a token → 401 problem+json with WWW-Authenticate: Bearer', async () => {
      const response = await ctx.app.inject('/metrics')
      assertProblem(response, 401)
      assert.match(String(response.headers['www-authenticate']), /^Bearer\b/)
      assert.doesNotMatch(response.body, /http_requests_total/)
    })

    test('a wrong token → 401, whatever its length or scheme', async () => {
      const wrong = [
        bearer(`${METRICS_TOKEN.slice(0, -1)}x`),
        bearer(METRICS_TOKEN.slice(0, -1)),
        bearer(`${METRICS_TOKEN}0`),
        bearer(''),
        { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` },
        { authorization: METRICS_TOKEN },
      ]
      for (const headers of wrong) {
        const response = await ctx.app.inject({ url: '/metrics', headers })
        assertProblem(response, 401)
        assert.doesNotMatch(response.body, /http_requests_total/)
      }
    })

    test('an access token of a user is not a metrics token', async () => {
      const user = await registerAndLogin(ctx.app)
      assertProblem(await ctx.app.inject({ url: '/metrics', headers: user.headers }), 401)
    })

    test('with the token: the Prometheus text format, and the route is not in the OpenAPI document', async () => {
      const response = await ctx.app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) })
      assert.equal(response.statusCode, 200)
      assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4\b/)
      assert.match(response.body, /^# HELP http_requests_total /m)
      assert.match(response.body, /^# TYPE http_request_duration_seconds histogram$/m)
      const doc = (await ctx.app.inject('/openapi.json')).json<{ paths: Record<string, unknown> }>()
      assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/metrics')), 'GET /metrics is documented')
    })

    test('requests are counted by method, route template and status, with their latency', async () => {
      const owner = await registerAndLogin(ctx.app)
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/product/',
        headers: owner.headers,
        payload: { product_id: uniqueSku(), name: 'Lamp', description: 'A lamp', price: 1999 },
      })
      assert.equal(created.statusCode, 201, created.body)
      const id = created.json<{ id: number }>().id
      const before = await scrape(ctx.app)
      const count = (samples: Sample[], method: string, route: string, status: string) =>
        valueOf(samples, 'http_requests_total', { method, route, status }) ?? 0

      await register(ctx.app) // 201
      assert.equal((await ctx.app.inject('/current-user')).statusCode, 401)
      for (const productId of [id, id])
        assert.equal(
          (await ctx.app.inject({ url: `/product/${productId}`, headers: owner.headers })).statusCode,
          200,
        )
      assert.equal(
        (await ctx.app.inject({ url: '/product/2147483000', headers: owner.headers })).statusCode,
        404,
      )
      assert.equal((await ctx.app.inject('/no-such-route/42')).statusCode, 404)

      const after = await scrape(ctx.app)
      const delta = (method: string, route: string, status: string) =>
        count(after, method, route, status) - count(before, method, route, status)
      assert.equal(delta('POST', '/users/', '201'), 1)
      assert.equal(delta('GET', '/current-user', '401'), 1)
      assert.equal(delta('GET', '/product/:id', '200'), 2)
      assert.equal(delta('GET', '/product/:id', '404'), 1)
      assert.equal(delta('GET', 'unmatched', '404'), 1)
      // The scrape before is itself counted, once it has been answered.
      assert.ok(count(after, 'GET', '/metrics', '200') >= 1)

      // Never a raw URL as a route: the label set stays bounded whatever clients ask for.
      const routes = new Set(after.flatMap((sample) => sample.labels.route ?? []))
      for (const route of routes) {
        assert.doesNotMatch(route, /\/\d+|no-such-route/, `raw URL as a route label: ${route}`)
      }

      // The histogram has buckets, a sum and a count that agree with the counter.
      const labels = { method: 'GET', route: '/product/:id', status: '200' }
      const buckets = after
        .filter(
          (s) =>
            s.name === 'http_request_duration_seconds_bucket' &&
            Object.entries(labels).every(([k, v]) => s.labels[k] === v),
        )
        .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), value: s.value }))
        .sort((a, b) => a.le - b.le)
      assert.ok(buckets.length >= 8, `only ${buckets.length} buckets`)
      for (let i = 1; i < buckets.length; i += 1)
        assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'buckets are cumulative')
      const total = count(after, 'GET', '/product/:id', '200')
      assert.equal(buckets.at(-1)!.le, Infinity)
      assert.equal(buckets.at(-1)!.value, total)
      assert.equal(valueOf(after, 'http_request_duration_seconds_count', labels), total)
      const sum = valueOf(after, 'http_request_duration_seconds_sum', labels)
      assert.ok(sum !== undefined && sum > 0, `sum ${sum}`)
    })

    test('process and Node.js metrics, without a prefix', async () => {
      const samples = await scrape(ctx.app)
      for (const name of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'process_start_time_seconds',
        'nodejs_heap_size_used_bytes',
        'nodejs_eventloop_lag_seconds',
      ])
        assert.ok(valueOf(samples, name) !== undefined, `${name} is missing`)
    })

    test('auth events: every known event starts at 0, and app.metrics.authEvent counts one', async () => {
      const before = await scrape(ctx.app)
      for (const event of AUTH_EVENTS)
        assert.equal(typeof valueOf(before, 'auth_events_total', { event }), 'number', `${event} is missing`)
      ctx.app.metrics.authEvent('refresh_token_reuse')
      ctx.app.metrics.authEvent('refresh_token_reuse')
      ctx.app.metrics.authEvent('login_failed')
      const after = await scrape(ctx.app)
      const delta = (event: string) =>
        valueOf(after, 'auth_events_total', { event })! - valueOf(before, 'auth_events_total', { event })!
      assert.equal(delta('refresh_token_reuse'), 2)
      assert.equal(delta('login_failed'), 1)
      assert.equal(delta('login_succeeded'), 0)
    })

    test('rate-limit hits are counted by route template', async () => {
      ctx.app.metrics.rateLimited('/login')
      ctx.app.metrics.rateLimited('/login')
      ctx.app.metrics.rateLimited(undefined)
      const samples = await scrape(ctx.app)
      assert.equal(valueOf(samples, 'rate_limit_hits_total', { route: '/login' }), 2)
      assert.equal(valueOf(samples, 'rate_limit_hits_total', { route: 'unmatched' }), 1)
    })

    test('a failed login is counted as login_failed', async () => {
      const before = valueOf(await scrape(ctx.app), 'auth_events_total', { event: 'login_failed' })!
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: 'nobody@example.com', password: 'not the password' },
      })
      assert.equal(response.statusCode, 401)
      const after = valueOf(await scrape(ctx.app), 'auth_events_total', { event: 'login_failed' })!
      assert.equal(after - before, 1, 'auth_events_total{event="login_failed"} did not grow')
    })

    if (ctx.engine === 'sqlite')
      test('SQLite has no connection pool: no pool gauges', async () => {
        const samples = await scrape(ctx.app)
        assert.ok(!samples.some((s) => s.name.startsWith('db_pool_')))
      })
    else
      test('the connection pool of the database the server opens is reported', async () => {
        const samples = await scrape(ctx.app)
        const total = valueOf(samples, 'db_pool_connections', { state: 'total' })
        assert.ok(total !== undefined && total >= 1, `db_pool_connections{state="total"} is ${total}`)
        assert.equal(valueOf(samples, 'db_pool_connections', { state: 'waiting' }), 0)
      })
  },
  { env: { METRICS_TOKEN } },
)

/** A handle like openDatabase's, which also exposes its driver pool (limited to one connection). */
function openWithPool(url: string): DatabaseHandle & { pool: pg.Pool | MysqlPool } {
  const target = parseDatabaseUrl(url)
  if (target.engine === 'postgres') {
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    return {
      db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
      engine: 'postgres',
      target,
      pool,
    }
  }
  if (target.engine === 'mysql') {
    const pool = createMysqlPool({ uri: url, connectionLimit: 1, timezone: 'Z' })
    return {
      db: new Kysely<Database>({ dialect: new MysqlDialect({ pool }) }),
      engine: 'mysql',
      target,
      pool,
    }
  }
  throw new Error(`no pool on ${target.engine}`)
}

/** Takes the pool's only connection, as a long query would; returns how to give it back. */
async function holdConnection(pool: pg.Pool | MysqlPool): Promise<() => void> {
  if (pool instanceof pg.Pool) {
    const client = await pool.connect()
    return () => client.release()
  }
  const connection = await new Promise<PoolConnection>((resolve, reject) =>
    (pool as MysqlPool).getConnection((error, conn) => (error ? reject(error) : resolve(conn))),
  )
  return () => connection.release()
}

for (const engine of testEngines().filter((e) => e.name !== 'sqlite')) {
  describe(`db_pool_connections reads the driver's pool [${engine.name}]`, { skip: engine.skip }, () => {
    let database: TestDatabase | undefined
    let handle: ReturnType<typeof openWithPool>
    let app: FastifyInstance

    before(async () => {
      database = await engine.create()
      handle = openWithPool(database.url)
      app = await buildApp(testConfig({ DATABASE_URL: database.url, METRICS_TOKEN }), {
        logger: false,
        database: handle,
      })
      await app.ready()
    })
    after(async () => {
      await app?.close()
      await handle?.db.destroy()
      await database?.drop()
    })

    // The app's own revocation sync queries every 500 ms on the pool's one connection: a scrape
    // can meet it busy, or one more query waiting. What a scrape shows is checked against what
    // the pool showed just before and just after it.
    test('total, idle and waiting connections, read at scrape time', async () => {
      assert.equal((await app.inject('/readyz')).statusCode, 200)
      let idle: Sample[] | undefined
      for (let attempt = 0; attempt < 50 && idle === undefined; attempt += 1) {
        const before = poolState(handle.pool)
        const samples = await scrape(app)
        const after = poolState(handle.pool)
        if (
          before?.idle === 1 &&
          after?.idle === 1 &&
          valueOf(samples, 'db_pool_connections', { state: 'idle' }) === 1
        )
          idle = samples
        else await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.ok(idle, 'no scrape showed the idle connection while the pool had one idle before and after it')
      assert.equal(valueOf(idle, 'db_pool_connections', { state: 'total' }), 1)
      assert.equal(valueOf(idle, 'db_pool_connections', { state: 'waiting' }), 0)
      assert.equal(valueOf(idle, 'db_pool_max_connections'), 1)

      // The only connection is busy and a query waits for it. While it is held no query ends, so
      // the number waiting can only grow (a sync may join): the scrape's lies between the two reads.
      const release = await holdConnection(handle.pool)
      const query = sql`select 1`.execute(app.db)
      for (let i = 0; i < 1000 && (poolState(handle.pool)?.waiting ?? 0) < 1; i += 1)
        await new Promise((resolve) => setImmediate(resolve))
      const waitingBefore = poolState(handle.pool)!.waiting
      const busy = await scrape(app)
      const waitingAfter = poolState(handle.pool)!.waiting
      release()
      await query
      assert.equal(valueOf(busy, 'db_pool_connections', { state: 'total' }), 1)
      assert.equal(valueOf(busy, 'db_pool_connections', { state: 'idle' }), 0)
      const waiting = valueOf(busy, 'db_pool_connections', { state: 'waiting' })!
      assert.ok(
        waitingBefore >= 1 && waiting >= waitingBefore && waiting <= waitingAfter,
        `${waitingBefore} ≤ ${waiting} ≤ ${waitingAfter}`,
      )
    })
  })
}

describe('metrics are per app', () => {
  const apps: FastifyInstance[] = []
  after(async () => {
    for (const app of apps) await app.close()
  })
  const start = async (env: Record<string, string> = {}) => {
    const app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:', ...env }), { logger: false })
    apps.push(app)
    await app.ready()
    return app
  }

  test('two apps in one process keep separate counts, outside the global registry', async () => {
    const first = await start({ METRICS_TOKEN })
    const second = await start({ METRICS_TOKEN })
    for (let i = 0; i < 3; i += 1) assert.equal((await first.inject('/healthz')).statusCode, 200)
    assert.equal((await second.inject('/healthz')).statusCode, 200)
    first.metrics.authEvent('logout')
    const labels = { method: 'GET', route: '/healthz', status: '200' }
    assert.equal(valueOf(await scrape(first), 'http_requests_total', labels), 3)
    assert.equal(valueOf(await scrape(second), 'http_requests_total', labels), 1)
    assert.equal(valueOf(await scrape(second), 'auth_events_total', { event: 'logout' }), 0)
    assert.notEqual(first.metrics.registry, globalRegistry)
    assert.equal(globalRegistry.getSingleMetric('http_requests_total'), undefined)
  })

  test('without METRICS_TOKEN there is no /metrics route: 404, even with a token', async () => {
    const app = await start()
    assertProblem(await app.inject('/metrics'), 404)
    assertProblem(await app.inject({ url: '/metrics', headers: bearer(METRICS_TOKEN) }), 404)
    assert.equal(app.hasRoute({ method: 'GET', url: '/metrics' }), false)
  })
})

describe('METRICS_TOKEN configuration', () => {
  const load = (token: string | undefined) =>
    loadConfig({
      NODE_ENV: 'test',
      SECRET_KEY: 'a-secret-key-of-more-than-32-bytes-0123456789',
      METRICS_TOKEN: token,
    })

  test('unset: no metrics token', () => {
    assert.equal(load(undefined).metricsToken, undefined)
    assert.equal(load('  ').metricsToken, undefined)
  })

  test('a token of 16 characters or more is kept', () => {
    assert.equal(load('0123456789abcdef').metricsToken, '0123456789abcdef')
  })

  for (const [title, token] of [
    ['shorter than 16 characters', '0123456789abcde'],
    ['with characters a bearer token cannot carry', 'metrics token with spaces'],
  ] as const) {
    test(`${title} → one line naming METRICS_TOKEN, without the token`, () => {
      assert.throws(
        () => load(token),
        (error: unknown) =>
          error instanceof ConfigError &&
          /^METRICS_TOKEN\b/.test(error.message) &&
          !error.message.includes('\n') &&
          !error.message.includes(token),
      )
    })
  }
})
