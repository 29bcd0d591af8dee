import type { Compilable, CompiledQuery, Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { Engine } from '../db/target.js'

/**
 * A query of every request (the one-row reads behind GET /product/{id} and GET /users/{id}), built
 * and compiled once per engine: building and compiling the same query anew for each request cost
 * about as much as running it (docs/performance.md). `build` makes it with placeholder values; each
 * run gives its own parameters, in the order of the placeholders.
 */
export function compiledOnce<Row>(build: (db: Kysely<Database>) => Compilable<Row>) {
  const compiled = new Map<Engine, CompiledQuery<Row>>()
  return async (db: Kysely<Database>, engine: Engine, parameters: readonly unknown[]): Promise<Row[]> => {
    let query = compiled.get(engine)
    // Stryker disable next-line ConditionalExpression: a cache; compiling again makes the same query.
    if (!query) {
      query = build(db).compile()
      compiled.set(engine, query)
    }
    return (await db.executeQuery<Row>({ ...query, parameters })).rows
  }
}
