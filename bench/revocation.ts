/**
 * What the revocation check costs per authenticated request (issue 4): GET /product/{id} with a
 * bearer token, back to back in one process, with the check (memory store; Redis store when
 * BENCH_REDIS_URL is set) and with it replaced by a no-op, the reference. Also the bare cost of
 * one check. Usage: npm run bench:revocation  (BENCH_SECONDS=10 by default)
 */
import autocannon from 'autocannon'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
const REDIS_URL = process.env.BENCH_REDIS_URL

interface Result {
  scenario: string
  requestsPerSecond: number
  p50: number
  p99: number
}

async function prepare(extraEnv: Record<string, string>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-bench-'))
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
    DATABASE_URL: `sqlite:///${path.join(dir, 'bench.db')}`,
    REDIS_KEY_PREFIX: `fastauth-bench-${process.pid}:`,
    // The rate limiter stays on (its cost is part of a request) with a limit no run reaches.
    RATE_LIMIT_PER_MINUTE: '1000000',
    ...extraEnv,
  })
  const app = await buildApp(config, { logger: false })
  const user = { name: 'bench', email: 'bench@example.com', password: 'bench password 1' }
  await app.inject({ method: 'POST', url: '/users/', payload: user })
  const login = await app.inject({
    method: 'POST',
    url: '/login',
    payload: { username: user.email, password: user.password },
  })
  const token = login.json<{ access_token: string }>().access_token
  const created = await app.inject({
    method: 'POST',
    url: '/product/',
    headers: { authorization: `Bearer ${token}` },
    payload: { product_id: 'BENCH-1', name: 'Bench', price: 100 },
  })
  const productId = created.json<{ id: number }>().id
  return { app, token, productId, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

async function load(
  scenario: string,
  app: FastifyInstance,
  token: string,
  productId: number,
): Promise<Result> {
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  process.stdout.write(`… ${scenario}: ${SECONDS}s, ${CONNECTIONS} connections\n`)
  const result = await autocannon({
    url: `${url}/product/${productId}`,
    headers: { authorization: `Bearer ${token}` },
    connections: CONNECTIONS,
    duration: SECONDS,
  })
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${scenario}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  const row = {
    scenario,
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
  }
  process.stdout.write(
    `✓ ${scenario}: ${row.requestsPerSecond} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms\n`,
  )
  return row
}

async function timeChecks(app: FastifyInstance, iterations: number): Promise<number> {
  const store = app.revocations
  const started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) await store.isRevoked('00000000-0000-4000-8000-000000000000')
  return Number(process.hrtime.bigint() - started) / iterations / 1000
}

const results: Result[] = []
const perCheck: string[] = []

const variants: { name: string; env: Record<string, string> }[] = [{ name: 'list', env: {} }]
if (REDIS_URL) variants.push({ name: 'list + Redis', env: { REDIS_URL } })

for (const variant of variants) {
  const withCheck = await prepare(variant.env)
  perCheck.push(
    `${variant.name}: ${(await timeChecks(withCheck.app, variant.name === 'list' ? 1_000_000 : 20_000)).toFixed(2)} µs per check (sequential)`,
  )
  results.push(
    await load(`revocation check, ${variant.name}`, withCheck.app, withCheck.token, withCheck.productId),
  )
  await withCheck.app.close()
  withCheck.cleanup()

  // The reference: the same app and request, with the check answering "not revoked" at once.
  const reference = await prepare(variant.env)
  reference.app.revocations.isRevoked = async () => false
  results.push(
    await load(
      `no check (reference for ${variant.name})`,
      reference.app,
      reference.token,
      reference.productId,
    ),
  )
  await reference.app.close()
  reference.cleanup()
}

console.log('\n| scenario | req/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |')
for (const row of results)
  console.log(`| ${row.scenario} | ${row.requestsPerSecond} | ${row.p50} | ${row.p99} |`)
for (let i = 0; i < results.length; i += 2) {
  const [checked, reference] = [results[i]!, results[i + 1]!]
  console.log(
    `\n${checked.scenario}: ${((checked.requestsPerSecond / reference.requestsPerSecond) * 100).toFixed(1)} % of the reference's throughput`,
  )
}
console.log(`\nOne check: ${perCheck.join('; ')}`)
