/**
 * The helpers of migrations 0001 to 0007, frozen with them. NEVER CHANGE THIS FILE: a database
 * that ran these migrations long ago and a fresh one must get the same schema, so nothing a
 * migration calls may follow the live code. A later migration that needs another helper (or
 * another column type) gets a new file beside this one (schema-v2.ts…), frozen in its turn.
 * test/db/migrations.test.ts compares the schema they leave with the one recorded at release.
 */
import {
  MysqlAdapter,
  PostgresAdapter,
  sql,
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type Kysely,
} from 'kysely'

type Engine = 'sqlite' | 'postgres' | 'mysql'

export function engineOf(db: Kysely<any>): Engine {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  return 'sqlite'
}

/** Column types: the same logical schema on every engine. */
export function columnTypes(engine: Engine) {
  return {
    /** Auto-incrementing integer primary key. */
    id: (engine === 'postgres' ? 'serial' : 'integer') as ColumnDataType,
    /** Builds the primary key of an `id` column (PostgreSQL's serial is already auto-incrementing). */
    primaryKey: (col: ColumnDefinitionBuilder) =>
      engine === 'postgres' ? col.primaryKey() : col.primaryKey().autoIncrement(),
    /** A UTC instant with millisecond precision. */
    timestamp: (engine === 'postgres'
      ? 'timestamptz(3)'
      : engine === 'mysql'
        ? 'datetime(3)'
        : 'timestamp') as ColumnDataType,
    /** Long text (unbounded on PostgreSQL/SQLite, 64 KiB on MySQL). */
    text: 'text' as ColumnDataType,
  }
}

/**
 * MySQL tables use a binary collation so that comparisons and unique indexes behave as on
 * PostgreSQL and SQLite: "é" ≠ "e", "a" ≠ "A". Case-insensitive uniqueness is explicit
 * (lower-cased key columns), never a side effect of a collation.
 */
export function tableOptions(engine: Engine) {
  return engine === 'mysql' ? sql`engine = InnoDB default charset = utf8mb4 collate = utf8mb4_bin` : sql``
}
