/**
 * Property-based API tests: every operation of /openapi.json gets many generated requests, valid
 * and deliberately invalid, sent over real HTTP to a listening server, and every answer must
 * (1) never be a 5xx, (2) when an error, be application/problem+json as our error handler writes
 * it, (3) when a success, have a status the operation declares and a body its schema accepts, and
 * (4) refuse (4xx) every body its schema refuses.
 *
 * PROPERTY_RUNS sets the runs per operation (default 100); FC_SEED (and FC_PATH) replay a failure
 * that fast-check reported; PROPERTY_ONLY="POST /login" runs only the operations containing that
 * text. PROPERTY_WITH_REDIS=1 runs the server with TEST_REDIS_URL.
 *
 * The fixtures live in properties/world.ts, the request generators in properties/plans.ts, the
 * sending and the checks in properties/exchange.ts; properties-translator.test.ts checks the
 * schema translator these generators stand on.
 */
import { randomUUID } from 'node:crypto'
import { before, test } from 'node:test'
import fc from 'fast-check'
import { describeEachEngine } from '../support/app.js'
import { schemaArbitraries, type SchemaArbitraries } from '../support/schema-arbitraries.js'
import { checkAnswer, materialize, operationAt, remember, send } from './properties/exchange.js'
import { planArbitrary } from './properties/plans.js'
import { World, type OpenApiDocument } from './properties/world.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100)
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const ONLY = process.env.PROPERTY_ONLY
/** PROPERTY_WITH_REDIS=1 (with TEST_REDIS_URL): the server keeps its shared state in Redis, as in production. */
const REDIS_ENV: Record<string, string> =
  process.env.PROPERTY_WITH_REDIS && process.env.TEST_REDIS_URL
    ? { REDIS_URL: process.env.TEST_REDIS_URL, REDIS_KEY_PREFIX: `fastauth-properties-${randomUUID()}:` }
    : {}

describeEachEngine(
  'generated requests to every operation of /openapi.json',
  (ctx) => {
    let base: string
    let document: OpenApiDocument
    let arbs: SchemaArbitraries
    let world: World

    before(async () => {
      base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
      document = (await (await fetch(`${base}/openapi.json`)).json()) as OpenApiDocument
      arbs = schemaArbitraries(document)
      world = new World(base, ctx)
      await world.setUp()
    })

    test('never a 5xx; errors are problem+json; successes are declared and match their schemas', async (t) => {
      const summary: string[] = []
      const started = Date.now()
      let requests = 0
      for (const [template, operations] of Object.entries(document.paths))
        for (const [method, op] of Object.entries(operations)) {
          const name = `${method.toUpperCase()} ${template}`
          if (ONLY && !name.includes(ONLY)) continue
          const statuses = new Map<number, number>()
          await t.test(name, async () => {
            const opStarted = Date.now()
            await fc.assert(
              fc.asyncProperty(planArbitrary(arbs, template, method, op), async (plan) => {
                const sent = await materialize(world, arbs, base, template, method, op, plan)
                const received = await send(sent)
                statuses.set(received.status, (statuses.get(received.status) ?? 0) + 1)
                requests += 1
                try {
                  // An empty or dot segment can make the URL another operation's (or none's).
                  const reached = operationAt(document, method, new URL(sent.url).pathname)
                  if (reached === op) checkAnswer(arbs, op, sent, received)
                  else
                    checkAnswer(
                      arbs,
                      reached ?? { responses: {} },
                      { ...sent, refusedBy: undefined },
                      received,
                    )
                  remember(world, plan, sent, received, template)
                } finally {
                  if (method !== 'get') await world.ensure()
                }
              }),
              { numRuns: RUNS, seed: SEED, path: process.env.FC_PATH, endOnFailure: true },
            )
            const counts = [...statuses]
              .sort(([a], [b]) => a - b)
              .map(([status, count]) => `${status}×${count}`)
            summary.push(`${name}: ${counts.join(' ')} (${Date.now() - opStarted} ms)`)
          })
        }
      for (const line of summary) t.diagnostic(line)
      t.diagnostic(`${requests} generated requests in ${Math.round((Date.now() - started) / 1000)} s`)
    })
  },
  { env: REDIS_ENV },
)
