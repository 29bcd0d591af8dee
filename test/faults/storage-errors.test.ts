/**
 * A SQLite file that cannot take a write (here a full disk, injected for real
 * with test/support/fs-faults.c) is a 503 with Retry-After, logged under its own cause
 * (SQLITE_FULL), never under the "cannot rollback" that used to replace it; /readyz says not ready
 * until the disk has room again.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TEST_SECRET, uniqueSku, uniqueUser } from '../support/app.js'
import { buildFsFaultsLibrary, fsFaultsSkip, StorageFaults } from '../support/fs-faults.js'
import { until } from '../support/processes.js'
import { killServers, startServerProcess, type ServerProcess } from '../support/server-process.js'

/** A safety net only: a hung server fails the test instead of hanging the suite. */
const TEST_TIMEOUT_MS = 180_000

interface Answer {
  status: number
  headers: Headers
  body: Record<string, unknown>
}

describe('SQLite: a full disk', { skip: fsFaultsSkip }, () => {
  let library: ReturnType<typeof buildFsFaultsLibrary> | undefined
  let dir: string | undefined
  let faults: StorageFaults
  let server: ServerProcess
  let origin: string
  let userId: number
  let headers: Record<string, string>

  before(
    async () => {
      library = buildFsFaultsLibrary()
      dir = mkdtempSync(path.join(tmpdir(), 'fastauth-disk-full-'))
      faults = new StorageFaults(dir, library.file)
      server = await startServerProcess(
        {
          SECRET_KEY: TEST_SECRET,
          DATABASE_URL: `sqlite:///${path.join(dir, 'app.db')}`,
          RATE_LIMIT_ENABLED: 'false',
          // Warnings and errors only: the lines this test reads, without a line per request.
          LOG_LEVEL: 'warn',
          ...faults.env,
        },
        { cwd: dir },
      )
      origin = server.url
      const user = uniqueUser()
      const registered = await call('POST', '/users/', user)
      assert.equal(registered.status, 201)
      userId = registered.body.id as number
      const login = await fetch(`${origin}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user.email, password: user.password }).toString(),
      })
      assert.equal(login.status, 200)
      headers = { authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` }
    },
    { timeout: TEST_TIMEOUT_MS },
  )
  after(async () => {
    faults?.diskFull(false)
    await killServers()
    if (dir) rmSync(dir, { recursive: true, force: true })
    library?.remove()
  })

  async function call(method: string, url: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${origin}${url}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return {
      status: response.status,
      headers: response.headers,
      body: (await response.json()) as Answer['body'],
    }
  }

  /** A 503 problem+json that asks to retry and tells nothing of the database's internals. */
  function assertUnavailable(answer: Answer, what: string) {
    assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`)
    assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.equal(answer.body.status, 503)
    assert.equal(typeof answer.body.title, 'string')
    assert.ok(Number(answer.headers.get('retry-after')) > 0, `${what}: Retry-After`)
    assert.doesNotMatch(String(answer.body.detail), /SQLITE|disk|rollback/i, `${what}: no internals`)
  }

  /**
   * The line that says the database became unavailable, naming its cause: one per outage, not one
   * per failed request (it may reach the pipe after the answer).
   */
  async function outageLine() {
    const find = () =>
      server.logLines().findLast((entry) => entry.level >= 50 && entry.dependency === 'database')
    await until(() => find() !== undefined, 'the line saying the database is unavailable')
    return find()!
  }

  test(
    'writes answer 503 with Retry-After, are logged as SQLITE_FULL, and store nothing',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const sku = uniqueSku()
      faults.diskFull(true)
      try {
        // Both are transactions (a product with its idempotency bookkeeping; a user's change): the
        // failing COMMIT is where SQLite rolls back by itself.
        const created = await call('POST', '/product/', { product_id: sku, name: 'Lamp', price: 1200 })
        const renamed = await call('PATCH', `/users/${userId}`, { name: `renamed_${sku.slice(-6)}` })
        const outage = await outageLine()
        assert.match(
          String(outage.reason),
          /^SQLITE_FULL\b/,
          `logged under its own cause, not: ${outage.reason}`,
        )
        const errorLines = server.logLines().filter((entry) => entry.level >= 50)
        assert.equal(
          errorLines.length,
          1,
          `one line for the outage, not one per request: ${JSON.stringify(errorLines)}`,
        )
        assert.doesNotMatch(server.output.stdout, /cannot rollback|no transaction is active/)
        assertUnavailable(created, 'POST /product/')
        assertUnavailable(renamed, `PATCH /users/${userId}`)
      } finally {
        faults.diskFull(false)
      }

      const search = await call('GET', `/product/?q=${encodeURIComponent(sku)}`)
      assert.equal(search.status, 200)
      assert.deepEqual(search.body.items, [], 'the refused product was not stored')
      const account = await call('GET', `/users/${userId}`)
      assert.equal(account.status, 200)
      assert.doesNotMatch(String(account.body.name), /^renamed_/, 'the refused change was not stored')
    },
  )

  test(
    '/readyz answers 503 while the disk is full and 200 once it has room; writes then succeed',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      faults.diskFull(true)
      try {
        const ready = await call('GET', '/readyz')
        assertUnavailable(ready, '/readyz')
        assert.equal((await call('GET', '/healthz')).status, 200, 'the process itself is alive')
        assert.match(String((await outageLine()).reason), /^SQLITE_FULL\b/)
      } finally {
        faults.diskFull(false)
      }

      await until(async () => (await call('GET', '/readyz')).status === 200, '/readyz ready again')
      const sku = uniqueSku()
      assert.equal(
        (await call('POST', '/product/', { product_id: sku, name: 'Lamp', price: 1200 })).status,
        201,
      )
      const search = await call('GET', `/product/?q=${encodeURIComponent(sku)}`)
      assert.equal((search.body.items as unknown[]).length, 1)
      const renamed = await call('PATCH', `/users/${userId}`, { name: `renamed_${sku.slice(-6)}` })
      assert.equal(renamed.status, 200)
    },
  )
})
