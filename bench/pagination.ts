/**
 * Keyset pagination at depth (issue 5): on a catalogue of BENCH_PRODUCTS products (1 000 000 by
 * default), the latency of the first page, of a page a million rows deep reached through real
 * cursors, and of filtered, sorted pages — and, in the same run, OFFSET paging at the same depth
 * to show why keyset is used. SQLite always; PostgreSQL when BENCH_POSTGRES_URL (or
 * TEST_POSTGRES_URL) is set. Writes the figures and the query plans to docs/performance.md.
 *
 *   npm run bench:pagination
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { migrateToLatest } from '../src/db/migrator.js'
import { openDatabase } from '../src/db/open.js'
import { parseDatabaseUrl } from '../src/db/target.js'
import { createProgress } from '../src/cli/progress.js'
import { seedDatabase } from '../src/cli/seed.js'

const PRODUCTS = Number(process.env.BENCH_PRODUCTS ?? 1_000_000)
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200)
const PAGE = 20
const WALK_PAGE = 100
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? process.env.TEST_POSTGRES_URL

interface Timing {
  p50: number
  p99: number
  mean: number
}

async function time(samples: number, run: () => Promise<void>): Promise<Timing> {
  for (let i = 0; i < Math.min(20, samples); i++) await run() // warm caches and statement caches
  const durations: number[] = []
  for (let i = 0; i < samples; i++) {
    const started = performance.now()
    await run()
    durations.push(performance.now() - started)
  }
  durations.sort((a, b) => a - b)
  const at = (q: number) => durations[Math.min(durations.length - 1, Math.floor(q * durations.length))]!
  return { p50: at(0.5), p99: at(0.99), mean: durations.reduce((a, b) => a + b, 0) / durations.length }
}

const ms = (value: number) => value.toFixed(2)

interface EngineReport {
  engine: string
  seedSeconds: number
  rows: string[]
  plans: string[]
}

async function benchEngine(engine: 'sqlite' | 'postgres', databaseUrl: string): Promise<EngineReport> {
  process.stdout.write(`\n== ${engine}: ${PRODUCTS} products\n`)
  const target = parseDatabaseUrl(databaseUrl)
  const handle = openDatabase(target)
  await migrateToLatest(handle.db)
  const seedStarted = performance.now()
  const seeded = await seedDatabase(handle.db, handle.engine, {
    products: PRODUCTS,
    users: 10,
    password: 'bench password',
    seed: 42,
  })
  const seedSeconds = (performance.now() - seedStarted) / 1000
  if (engine === 'postgres') await sql`analyze`.execute(handle.db)

  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
    DATABASE_URL: databaseUrl,
  })
  const app = await buildApp(config, { logger: false, database: handle, migrate: false })
  await app.ready()
  const login = await app.inject({
    method: 'POST',
    url: '/login',
    payload: { username: seeded.userEmails[0], password: 'bench password' },
  })
  const headers = { authorization: `Bearer ${login.json<{ access_token: string }>().access_token}` }
  const get = async (url: string) => {
    const response = await app.inject({ method: 'GET', url, headers })
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`)
    return response.json<{ items: unknown[]; next_cursor: string | null }>()
  }

  // Walk to the depth through real cursors, as a client would.
  const depth = PRODUCTS - PAGE
  const walk = createProgress(`${engine}: walking ${depth} rows deep through cursors`, depth)
  let cursor: string | null = null
  let seen = 0
  while (seen < depth) {
    const size = Math.min(WALK_PAGE, depth - seen)
    const page: { items: unknown[]; next_cursor: string | null } = await get(
      `/product/?limit=${size}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    )
    seen += page.items.length
    cursor = page.next_cursor
    walk.advance(seen)
    if (!cursor) break
  }
  walk.finish()
  const deepCursor = encodeURIComponent(cursor!)

  const scenarios: [string, string][] = [
    ['first page (default sort -created_at)', `/product/?limit=${PAGE}`],
    [
      `page ${depth.toLocaleString('en')} rows deep, through cursors`,
      `/product/?limit=${PAGE}&cursor=${deepCursor}`,
    ],
    [
      'filtered and sorted: 1 000 ≤ price ≤ 5 000, sort=-price',
      `/product/?limit=${PAGE}&min_price=1000&max_price=5000&sort=-price`,
    ],
    ['sorted by name', `/product/?limit=${PAGE}&sort=name`],
    ['one owner, newest first (owner_id filter)', `/product/?limit=${PAGE}&owner_id=1`],
    ['text search q=lamp, sort=price', `/product/?limit=${PAGE}&q=lamp&sort=price`],
  ]
  const rows: string[] = []
  for (const [label, url] of scenarios) {
    process.stdout.write(`… ${engine}: ${label}\n`)
    const timing = await time(SAMPLES, async () => void (await get(url)))
    rows.push(`| ${engine} | ${label} | API | ${ms(timing.p50)} | ${ms(timing.p99)} |`)
  }

  // SQL alone, keyset against OFFSET at the same depth: the API adds the same cost to both.
  const keysetAt = await handle.db
    .selectFrom('products')
    .select(['created_at', 'id'])
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .offset(depth - 1)
    .limit(1)
    .executeTakeFirstOrThrow()
  const keysetSql = async () =>
    void (await handle.db
      .selectFrom('products')
      .selectAll()
      .where('created_at', '<=', keysetAt.created_at)
      .where((eb) => eb.or([eb('created_at', '<', keysetAt.created_at), eb('id', '<', keysetAt.id)]))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(PAGE)
      .execute())
  const offsetSql = async () =>
    void (await handle.db
      .selectFrom('products')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .offset(depth)
      .limit(PAGE)
      .execute())
  process.stdout.write(`… ${engine}: keyset vs OFFSET at depth ${depth}\n`)
  const keyset = await time(SAMPLES, keysetSql)
  const offset = await time(Math.max(5, Math.floor(SAMPLES / 20)), offsetSql)
  rows.push(
    `| ${engine} | keyset, ${depth.toLocaleString('en')} rows deep | SQL | ${ms(keyset.p50)} | ${ms(keyset.p99)} |`,
  )
  rows.push(
    `| ${engine} | OFFSET ${depth.toLocaleString('en')} (same rows) | SQL | ${ms(offset.p50)} | ${ms(offset.p99)} |`,
  )
  rows.push(`| ${engine} | OFFSET ÷ keyset at that depth | | ${(offset.p50 / keyset.p50).toFixed(0)}× | |`)

  // Query plans of each supported sort and filter.
  const plans: string[] = []
  const plan = async (
    label: string,
    query: { compile(): { sql: string; parameters: readonly unknown[] } },
  ) => {
    const compiled = query.compile()
    const literal = (value: unknown) =>
      value instanceof Date
        ? `'${value.toISOString()}'`
        : typeof value === 'string'
          ? `'${value.replace(/'/g, "''")}'`
          : String(value)
    // EXPLAIN takes no bound parameters on every engine: the values are written into the text.
    let next = 0
    const inlined = compiled.sql.replace(/\?|\$(\d+)/g, (_match, position?: string) =>
      literal(compiled.parameters[position ? Number(position) - 1 : next++]),
    )
    const result = await sql
      .raw(`${engine === 'sqlite' ? 'explain query plan' : 'explain'} ${inlined}`)
      .execute(handle.db)
    const text = result.rows
      .map((row) =>
        engine === 'sqlite'
          ? (row as { detail: string }).detail
          : (row as { 'QUERY PLAN': string })['QUERY PLAN'],
      )
      .join('\n')
    plans.push(`**${engine} — ${label}**\n\n\`\`\`\n${text}\n\`\`\``)
  }
  const base = () => handle.db.selectFrom('products').selectAll().limit(PAGE)
  await plan(
    'sort -created_at, after a cursor',
    base()
      .where('created_at', '<=', keysetAt.created_at)
      .where((eb) => eb.or([eb('created_at', '<', keysetAt.created_at), eb('id', '<', keysetAt.id)]))
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc'),
  )
  await plan(
    'sort price, after a cursor',
    base()
      .where('price', '>=', 50_000)
      .where((eb) => eb.or([eb('price', '>', 50_000), eb('id', '>', 1)]))
      .orderBy('price')
      .orderBy('id'),
  )
  await plan('sort -name', base().orderBy('name', 'desc').orderBy('id', 'desc'))
  await plan(
    'min_price/max_price with sort -price',
    base()
      .where('price', '>=', 1000)
      .where('price', '<=', 5000)
      .orderBy('price', 'desc')
      .orderBy('id', 'desc'),
  )
  await plan(
    'owner_id with the default sort',
    base().where('owner_id', '=', 1).orderBy('created_at', 'desc').orderBy('id', 'desc'),
  )

  await app.close()
  await handle.db.destroy()
  return { engine, seedSeconds, rows, plans }
}

const reports: EngineReport[] = []
const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-bench-pages-'))
try {
  reports.push(await benchEngine('sqlite', `sqlite:///${path.join(dir, 'bench.db')}`))
  if (POSTGRES_URL) {
    const name = `fastauth_bench_${process.pid}`
    const admin = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 1 }) }),
    })
    await sql`create database ${sql.id(name)}`.execute(admin)
    try {
      const url = new URL(POSTGRES_URL)
      url.pathname = `/${name}`
      reports.push(await benchEngine('postgres', url.toString()))
    } finally {
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin)
      await admin.destroy()
    }
  } else {
    process.stdout.write('\nPostgreSQL skipped: set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL)\n')
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const section = [
  '<!-- pagination:start -->',
  '## Pagination at depth (`npm run bench:pagination`)',
  '',
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  `${PRODUCTS.toLocaleString('en')} products seeded with \`npm run cli -- seed\` (${reports.map((r) => `${r.engine}: ${r.seedSeconds.toFixed(1)} s`).join(', ')}).`,
  `Latency in milliseconds over ${SAMPLES} sequential requests after a warm-up; "API" is the whole request through`,
  '`app.inject` (routing, JWT check, validation, query, serialization), "SQL" the query alone. The deep page\'s cursor',
  'comes from walking the whole list page by page, as a client would.',
  '',
  '| engine | request | through | p50 ms | p99 ms |',
  '| --- | --- | --- | ---: | ---: |',
  ...reports.flatMap((report) => report.rows),
  '',
  '### Query plans',
  '',
  ...reports.flatMap((report) => report.plans.flatMap((p) => [p, ''])),
  '<!-- pagination:end -->',
].join('\n')

const file = 'docs/performance.md'
let doc = ''
try {
  doc = readFileSync(file, 'utf8')
} catch {
  doc =
    '# Performance\n\nEvery figure here is produced by a script in `bench/`, on the machine named with it.\n'
}
doc = doc.includes('<!-- pagination:start -->')
  ? doc.replace(/<!-- pagination:start -->[\s\S]*<!-- pagination:end -->/, section)
  : `${doc.trimEnd()}\n\n${section}\n`
writeFileSync(file, doc)
process.stdout.write(`\n${reports.flatMap((r) => r.rows).join('\n')}\n\nwritten to ${file}\n`)
