import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildApp } from '../../src/app.js'
import { parseDatabaseUrl } from '../../src/db/target.js'
import { MIGRATION_NAMES } from '../../src/db/migrator.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  testConfig,
  testEngines,
  uniqueSku,
  uniqueUser,
} from '../support/app.js'
import { freePort } from '../support/processes.js'

const PARALLEL = 8

describeEachEngine('integrity enforced by the database', (ctx) => {
  // Real sockets, so that requests are truly concurrent.
  let base: string
  before(async () => {
    base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  })

  test('concurrent registrations of one email give exactly one 201 and otherwise 409, never a 500', async () => {
    const email = uniqueUser().email
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, () =>
        fetch(`${base}/users/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // Different names, one email (in different cases): only the email collides.
          body: JSON.stringify({ ...uniqueUser(), email: Math.random() < 0.5 ? email : email.toUpperCase() }),
        }),
      ),
    )
    const statuses = responses.map((response) => response.status).sort()
    assert.deepEqual(statuses, [201, ...Array<number>(PARALLEL - 1).fill(409)])
    const rows = await ctx.app.db.selectFrom('users').select('id').where('email', '=', email).execute()
    assert.equal(rows.length, 1)
  })

  test('concurrent registrations of one name (any case) give exactly one 201', async () => {
    const name = uniqueUser().name
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        fetch(`${base}/users/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...uniqueUser(), name: i % 2 ? name.toUpperCase() : name }),
        }),
      ),
    )
    assert.deepEqual(responses.map((response) => response.status).sort(), [
      201,
      ...Array<number>(PARALLEL - 1).fill(409),
    ])
  })

  test('concurrent creations of one product_id give exactly one 201 and otherwise 409', async () => {
    const user = uniqueUser()
    await fetch(`${base}/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    })
    const token = await login(ctx.app, user.email, user.password)
    const sku = uniqueSku()
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        fetch(`${base}/product/`, {
          method: 'POST',
          headers: { ...bearer(token), 'content-type': 'application/json' },
          body: JSON.stringify({ product_id: sku, name: `Product ${i}`, price: i }),
        }),
      ),
    )
    assert.deepEqual(responses.map((response) => response.status).sort(), [
      201,
      ...Array<number>(PARALLEL - 1).fill(409),
    ])
    const rows = await ctx.app.db.selectFrom('products').select('id').where('product_id', '=', sku).execute()
    assert.equal(rows.length, 1)
  })

  test('names differing only by accent are distinct on every engine (no collation surprises)', async () => {
    const first = uniqueUser()
    const second = { ...uniqueUser(), name: `${first.name}é` }
    const accentless = { ...uniqueUser(), name: `${first.name}e` }
    for (const user of [first, second, accentless]) {
      const response = await ctx.app.inject({ method: 'POST', url: '/users/', payload: user })
      assert.equal(response.statusCode, 201, response.body)
    }
  })

  test('timestamps come back as the same UTC instant that was stored', async () => {
    const user = uniqueUser()
    const before = Date.now()
    const response = await ctx.app.inject({ method: 'POST', url: '/users/', payload: user })
    const body = response.json<{ created_at: string; id: number }>()
    assert.match(body.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    const created = Date.parse(body.created_at)
    assert.ok(created >= before - 1 && created <= Date.now(), `${body.created_at} is not now`)
    const row = await ctx.app.db
      .selectFrom('users')
      .select('created_at')
      .where('id', '=', body.id)
      .executeTakeFirstOrThrow()
    assert.ok(row.created_at instanceof Date)
    assert.equal(row.created_at.toISOString(), body.created_at)
  })
})

describeEachEngine('migrations', (ctx) => {
  test('two instances starting at once on one database both come up, and the schema is applied once', async () => {
    const [first, second] = await Promise.all([
      buildApp(ctx.config, { logger: false }),
      buildApp(ctx.config, { logger: false }),
    ])
    try {
      await Promise.all([first.ready(), second.ready()])
      const response = await second.inject({ method: 'POST', url: '/users/', payload: uniqueUser() })
      assert.equal(response.statusCode, 201)
      const applied = await ctx.app.db
        .selectFrom('kysely_migration' as never)
        .select('name' as never)
        .execute()
      assert.deepEqual(
        applied.map((row) => (row as { name: string }).name),
        MIGRATION_NAMES,
      )
    } finally {
      await Promise.all([first.close(), second.close()])
    }
  })
})

// ------------------------------------------------------------------ outage and recovery

const POSTGRES_BIN = existsSync('/usr/lib/postgresql')
  ? readdirSync('/usr/lib/postgresql')
      .map((version) => `/usr/lib/postgresql/${version}/bin`)
      .find((dir) => existsSync(`${dir}/initdb`))
  : undefined

/** A PostgreSQL cluster of the test's own, so stopping it disturbs no other test. */
class OwnPostgresCluster {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'fastauth-pg-'))
  port = 0
  private readonly asRoot = userInfo().uid === 0

  private run(binary: string, args: string[]) {
    const command = this.asRoot ? 'runuser' : `${POSTGRES_BIN}/${binary}`
    const fullArgs = this.asRoot ? ['-u', 'postgres', '--', `${POSTGRES_BIN}/${binary}`, ...args] : args
    execFileSync(command, fullArgs, { stdio: 'pipe', timeout: 30_000 })
  }

  async init() {
    // initdb refuses to run as root: the cluster belongs to the postgres user.
    if (this.asRoot) execFileSync('chown', ['postgres', this.dir])
    this.port = await freePort()
    this.run('initdb', ['-D', `${this.dir}/data`, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  }

  start() {
    this.run('pg_ctl', [
      '-D',
      `${this.dir}/data`,
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-l',
      `${this.dir}/log`,
      '-w',
      'start',
    ])
  }

  stop() {
    this.run('pg_ctl', ['-D', `${this.dir}/data`, '-m', 'fast', '-w', 'stop'])
  }

  destroy() {
    try {
      this.stop()
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true })
  }

  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }
}

const clusterSkip = !testEngines().find((engine) => engine.name === 'postgres' && !engine.skip)
  ? 'TEST_POSTGRES_URL is not set'
  : !POSTGRES_BIN
    ? 'PostgreSQL server binaries (initdb) are not installed'
    : undefined

describe('a database that goes away and comes back [postgres]', { skip: clusterSkip }, () => {
  let cluster: OwnPostgresCluster
  before(async () => {
    cluster = new OwnPostgresCluster()
    await cluster.init()
    cluster.start()
  })
  after(() => cluster?.destroy())

  test('/readyz and database routes answer 503 while it is down, and recover by themselves', async () => {
    assert.equal(parseDatabaseUrl(cluster.url).engine, 'postgres')
    const app = await buildApp(testConfig({ DATABASE_URL: cluster.url }), { logger: false })
    try {
      await app.ready()
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
      const user = uniqueUser()
      assert.equal((await app.inject({ method: 'POST', url: '/users/', payload: user })).statusCode, 201)

      cluster.stop()
      const ready = await app.inject({ method: 'GET', url: '/readyz' })
      assertProblem(ready, 503)
      assert.ok(Number(ready.headers['retry-after']) > 0)
      const loginWhileDown = await app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
      })
      const problem = assertProblem(loginWhileDown, 503)
      assert.doesNotMatch(problem.detail, /ECONNREFUSED|127\.0\.0\.1|postgres/i, 'no internal detail leaks')
      assert.equal(
        (await app.inject({ method: 'GET', url: '/healthz' })).statusCode,
        200,
        'the process is alive',
      )

      cluster.start()
      let status = 0
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        status = (await app.inject({ method: 'GET', url: '/readyz' })).statusCode
        if (status !== 200) await sleep(100)
      }
      assert.equal(status, 200, 'ready again once the database is back')
      const token = await login(app, user.email, user.password)
      assert.equal(
        (await app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })).statusCode,
        200,
      )
    } finally {
      await app.close()
    }
  })
})
