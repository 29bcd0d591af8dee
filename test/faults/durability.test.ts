/**
 * No acknowledged write is lost when the OS crashes (a power loss, a kernel
 * panic) on the SQLite default, and SQLITE_SYNCHRONOUS=normal is the setting that trades this away.
 *
 * The server runs as a process of its own with test/support/fs-faults.c preloaded: the OS crash
 * is a SIGKILL followed by the loss of every write the server had not synced (see
 * test/support/fs-faults.ts). What is left of the database is then opened and read.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { migrateToLatest } from '../../src/db/migrator.js'
import { openDatabase } from '../../src/db/open.js'
import { parseDatabaseUrl } from '../../src/db/target.js'
import { TEST_SECRET, uniqueSku, uniqueUser } from '../support/app.js'
import { buildFsFaultsLibrary, fsFaultsSkip, StorageFaults } from '../support/fs-faults.js'
import { killServers, startServerProcess } from '../support/server-process.js'

/** A safety net only: a hung server fails the test instead of hanging the suite. */
const TEST_TIMEOUT_MS = 180_000

/** Enough commits to span many WAL frames, few enough to stay below SQLite's automatic checkpoint. */
const PRODUCTS = 40

describe('SQLite: acknowledged writes and an OS crash', { skip: fsFaultsSkip }, () => {
  let library: ReturnType<typeof buildFsFaultsLibrary> | undefined
  const dirs: string[] = []
  before(() => {
    library = buildFsFaultsLibrary()
  })
  after(async () => {
    await killServers()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    library?.remove()
  })

  /**
   * A migrated database (closed cleanly, so on disk), a server on it under the storage faults,
   * PRODUCTS products each answered 201, then an OS crash. Returns the SKUs answered 201 and those
   * of them still in the database afterwards.
   */
  async function createProductsThenCrash(env: Record<string, string>) {
    const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-durability-'))
    dirs.push(dir)
    const databaseUrl = `sqlite:///${path.join(dir, 'app.db')}`
    const setup = openDatabase(parseDatabaseUrl(databaseUrl))
    await migrateToLatest(setup.db)
    await setup.db.destroy()
    const faults = new StorageFaults(dir, library!.file)
    faults.assumeSynced()

    const server = await startServerProcess(
      {
        SECRET_KEY: TEST_SECRET,
        DATABASE_URL: databaseUrl,
        RATE_LIMIT_ENABLED: 'false',
        ...faults.env,
        ...env,
      },
      { cwd: dir },
    )
    const origin = server.url
    const user = uniqueUser()
    const registered = await fetch(`${origin}/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    })
    assert.equal(registered.status, 201, await registered.clone().text())
    const login = await fetch(`${origin}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: user.email, password: user.password }).toString(),
    })
    assert.equal(login.status, 200)
    const { access_token: token } = (await login.json()) as { access_token: string }

    const acknowledged: string[] = []
    for (let i = 0; i < PRODUCTS; i++) {
      const sku = uniqueSku()
      const response = await fetch(`${origin}/product/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ product_id: sku, name: `Product ${i}`, price: 100 + i }),
      })
      assert.equal(response.status, 201, await response.text())
      acknowledged.push(sku)
    }

    await server.kill()
    faults.loseUnsyncedWrites()

    const after = openDatabase(parseDatabaseUrl(databaseUrl))
    try {
      const integrity = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(after.db)
      assert.deepEqual(
        integrity.rows.map((row) => row.integrity_check),
        ['ok'],
        'what the crash left is a consistent database',
      )
      const stored = await after.db
        .selectFrom('products')
        .select('product_id')
        .where('product_id', 'in', acknowledged)
        .execute()
      return { acknowledged, kept: new Set(stored.map((row) => row.product_id)) }
    } finally {
      await after.db.destroy()
    }
  }

  test(
    'by default (synchronous FULL) every product answered 201 is still there after the crash',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { acknowledged, kept } = await createProductsThenCrash({})
      const lost = acknowledged.filter((sku) => !kept.has(sku))
      assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged products were lost`)
    },
  )

  test(
    'SQLITE_SYNCHRONOUS=normal trades that away: products answered 201 are lost',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      // In WAL mode, NORMAL syncs only at checkpoints: every commit since the last one is at the
      // mercy of the OS. This documents what the setting gives up; the database stays consistent.
      const { acknowledged, kept } = await createProductsThenCrash({ SQLITE_SYNCHRONOUS: 'normal' })
      assert.ok(kept.size < acknowledged.length, 'some acknowledged products were lost')
    },
  )
})
