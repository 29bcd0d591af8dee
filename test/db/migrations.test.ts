import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { NO_MIGRATIONS, sql, type Kysely } from 'kysely'
import { openDatabase } from '../../src/db/open.js'
import { parseDatabaseUrl } from '../../src/db/target.js'
import { createMigrator, MIGRATION_NAMES } from '../../src/db/migrator.js'
import { testEngines, type EngineName, type TestDatabase } from '../support/app.js'

// Migrations are frozen in time: a database that ran 0001..0007 years ago and a fresh one must
// have the same schema. The schema they leave, on each engine, was dumped once and is kept next
// to this file; any change to an old migration, or to what it imports, shows here as a diff.
// A new migration never changes these snapshots (they stop at 0007); it may add its own.

/** The last migration the snapshots cover. */
const SNAPSHOT_MIGRATION = '0007_sessions_revoked_at'

type Db = Kysely<unknown>
type Row = Record<string, unknown>

const rows = async (db: Db, query: ReturnType<typeof sql>) => (await query.execute(db)).rows as Row[]

/** One line per row, fields in the order the query names them. */
const lines = (title: string, found: Row[]) =>
  [`-- ${title}`, ...found.map((row) => Object.values(row).map(String).join(' | '))].join('\n')

/** SQLite keeps each table's and index's CREATE statement: that text is its schema. */
async function sqliteSchema(db: Db): Promise<string> {
  const found = await rows(
    db,
    sql`select type, name, tbl_name, sql from sqlite_master
        where name not like 'sqlite_%' and name not like 'kysely_%' order by type, name`,
  )
  return lines('sqlite_master', found)
}

async function postgresSchema(db: Db): Promise<string> {
  const columns = await rows(
    db,
    sql`select table_name, ordinal_position, column_name, data_type, character_maximum_length,
               numeric_precision, datetime_precision, is_nullable, column_default
        from information_schema.columns
        where table_schema = 'public' and table_name not like 'kysely_%'
        order by table_name, ordinal_position`,
  )
  const constraints = await rows(
    db,
    sql`select conrelid::regclass::text as table_name, conname, pg_get_constraintdef(oid) as definition
        from pg_constraint
        where connamespace = 'public'::regnamespace and conrelid::regclass::text not like 'kysely_%'
        order by 1, 2`,
  )
  const indexes = await rows(
    db,
    sql`select tablename, indexname, indexdef from pg_indexes
        where schemaname = 'public' and tablename not like 'kysely_%' order by 1, 2`,
  )
  return [lines('columns', columns), lines('constraints', constraints), lines('indexes', indexes)].join('\n')
}

/** MySQL/MariaDB write the whole definition of a table back as one statement. */
async function mysqlSchema(db: Db): Promise<string> {
  const tables = await rows(
    db,
    sql`select table_name as name from information_schema.tables
        where table_schema = database() and table_name not like 'kysely_%' order by 1`,
  )
  const definitions: string[] = []
  for (const { name } of tables) {
    const [created] = await rows(db, sql`show create table ${sql.id(String(name))}`)
    definitions.push(String(created!['Create Table']))
  }
  return definitions.join(';\n\n')
}

/** The flavour a snapshot is kept for: MariaDB and MySQL describe the same table differently. */
async function flavourOf(engine: EngineName, db: Db): Promise<string> {
  if (engine !== 'mysql') return engine
  const [row] = await rows(db, sql`select version() as version`)
  return /mariadb/i.test(String(row!.version)) ? 'mariadb' : 'mysql'
}

const schemaOf = { sqlite: sqliteSchema, postgres: postgresSchema, mysql: mysqlSchema }

const snapshotFile = (flavour: string) =>
  new URL(`./schema-after-${SNAPSHOT_MIGRATION.slice(0, 4)}.${flavour}.txt`, import.meta.url)

for (const engine of testEngines()) {
  describe(`migrations are frozen [${engine.name}]`, { skip: engine.skip }, () => {
    let database: TestDatabase | undefined
    let handle: ReturnType<typeof openDatabase> | undefined
    before(async () => {
      database = await engine.create()
      handle = openDatabase(parseDatabaseUrl(database.url))
      // Tables must carry their own charset and collation, not inherit the database's: on a
      // database whose default is another, the snapshot shows that they do.
      if (engine.name === 'mysql')
        await sql`alter database character set latin1 collate latin1_swedish_ci`.execute(handle.db)
    })
    after(async () => {
      await handle?.db.destroy()
      await database?.drop()
    })

    test(`a fresh database migrated to ${SNAPSHOT_MIGRATION} has exactly the recorded schema`, async (t) => {
      const db = handle!.db as unknown as Db
      const { error, results } = await createMigrator(db).migrateTo(SNAPSHOT_MIGRATION)
      assert.equal(error, undefined)
      assert.deepEqual(
        results?.map((result) => result.migrationName),
        MIGRATION_NAMES.slice(0, MIGRATION_NAMES.indexOf(SNAPSHOT_MIGRATION) + 1),
      )
      const schema = `${await schemaOf[engine.name](db)}\n`
      const flavour = await flavourOf(engine.name, db)
      const file = snapshotFile(flavour)
      // Recorded once, from the migrations as they were released; never re-recorded to make this pass.
      if (process.env.RECORD_SCHEMA_SNAPSHOT === '1') writeFileSync(file, schema)
      if (!existsSync(file)) return t.skip(`no schema recorded for ${flavour}`)
      assert.equal(schema, readFileSync(file, 'utf8'))
    })

    test('every later migration applies on top, and all of them revert to an empty database', async () => {
      const db = handle!.db as unknown as Db
      const migrator = createMigrator(db)
      const latest = await migrator.migrateToLatest()
      assert.equal(latest.error, undefined)
      const { error } = await migrator.migrateTo(NO_MIGRATIONS)
      assert.equal(error, undefined)
      const tables = (await handle!.db.introspection.getTables()).map((table) => table.name)
      assert.deepEqual(tables, [])
    })
  })
}

describe('migrations and their helpers import nothing that can change', () => {
  const folder = new URL('../../src/db/migrations/', import.meta.url)
  for (const file of readdirSync(folder).filter((name) => name.endsWith('.ts')))
    test(`${file} imports only kysely and frozen helpers`, () => {
      const source = readFileSync(new URL(file, folder), 'utf8')
      const imported = [...source.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((match) => match[1])
      for (const name of imported)
        assert.match(name!, /^(kysely|\.\/schema-v\d+\.js)$/, `${file} imports ${name}`)
    })
})
