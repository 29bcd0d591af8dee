/**
 * The databases of `npm run bench`: one seeded through our own migrations and seeder, and an
 * identical copy for the reference, so that both servers read the same rows from the same schema
 * (indexes included) and each writes only to its own.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { migrateToLatest } from '../src/db/migrator.js'
import { openDatabase } from '../src/db/open.js'
import { parseDatabaseUrl } from '../src/db/target.js'
import { seedDatabase } from '../src/cli/seed.js'

export type BenchEngine = 'sqlite' | 'postgres'

export interface BenchDatabases {
  engine: BenchEngine
  /** DATABASE_URL of our server. */
  oursUrl: string
  /** REFERENCE_DATABASE of the reference: a SQLite file or a postgres:// URL. */
  reference: string
  /** The seeded accounts (they share one password), and how many products there are. */
  emails: string[]
  password: string
  products: number
  /** A folder for this engine's logs and profiles, removed by cleanup(). */
  dir: string
  /**
   * SQLite only: a copy of a side's database file as it is now (no server may be running on it),
   * for a second server of that side that must not write to the first one's file.
   */
  copySqlite(side: 'ours' | 'reference', name: string): string
  cleanup(): Promise<void>
}

export const BENCH_PASSWORD = 'bench password 1'

async function seed(databaseUrl: string, products: number, users: number) {
  const handle = openDatabase(parseDatabaseUrl(databaseUrl))
  try {
    await migrateToLatest(handle.db)
    const seeded = await seedDatabase(handle.db, handle.engine, {
      products,
      users,
      password: BENCH_PASSWORD,
      seed: 42,
    })
    if (handle.engine === 'postgres') await sql`analyze`.execute(handle.db)
    return seeded
  } finally {
    await handle.db.destroy()
  }
}

export async function prepareDatabases(
  engine: BenchEngine,
  options: { products: number; users: number; postgresUrl?: string },
): Promise<BenchDatabases> {
  const dir = mkdtempSync(path.join(tmpdir(), `fastauth-bench-${engine}-`))
  const removeDir = () => rmSync(dir, { recursive: true, force: true })

  if (engine === 'sqlite') {
    const ours = path.join(dir, 'ours.db')
    const reference = path.join(dir, 'reference.db')
    const seeded = await seed(`sqlite:///${ours}`, options.products, options.users)
    const copy = (from: string, to: string) => {
      // Closing the last connection checkpointed the WAL into the file: the copy is complete.
      copyFileSync(from, to)
      if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`)
    }
    copy(ours, reference)
    return {
      engine,
      oursUrl: `sqlite:///${ours}`,
      reference,
      emails: seeded.userEmails,
      password: BENCH_PASSWORD,
      products: options.products,
      dir,
      copySqlite: (side, name) => {
        const file = path.join(dir, `${name}.db`)
        copy(side === 'ours' ? ours : reference, file)
        return file
      },
      cleanup: async () => removeDir(),
    }
  }

  if (!options.postgresUrl) throw new Error('PostgreSQL needs BENCH_POSTGRES_URL or TEST_POSTGRES_URL')
  const admin = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: options.postgresUrl, max: 1 }),
    }),
  })
  const names = { ours: `fastauth_bench_${process.pid}`, reference: `fastauth_bench_${process.pid}_ref` }
  const urlOf = (name: string) => {
    const url = new URL(options.postgresUrl!)
    url.pathname = `/${name}`
    return url.toString()
  }
  const drop = async () => {
    for (const name of Object.values(names))
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin)
  }
  try {
    await drop()
    await sql`create database ${sql.id(names.ours)}`.execute(admin)
    const seeded = await seed(urlOf(names.ours), options.products, options.users)
    // A copy made by PostgreSQL itself: the same rows, indexes and statistics.
    await sql`create database ${sql.id(names.reference)} template ${sql.id(names.ours)}`.execute(admin)
    return {
      engine,
      oursUrl: urlOf(names.ours),
      reference: urlOf(names.reference),
      emails: seeded.userEmails,
      password: BENCH_PASSWORD,
      products: options.products,
      dir,
      copySqlite: () => {
        throw new Error('copySqlite: this is a PostgreSQL bench')
      },
      cleanup: async () => {
        await drop()
        await admin.destroy()
        removeDir()
      },
    }
  } catch (error) {
    await drop().catch(() => {})
    await admin.destroy()
    removeDir()
    throw error
  }
}
