/**
 * The rate limit tests' pieces: fresh client addresses, users and login attempts, the shape of a
 * 429, metrics, bounded polling, a SQLite database for suites that need no particular engine, and
 * Redis keys under a prefix of their own.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { assertProblem, testEngines, uniqueUser, type TestDatabase } from '../support/app.js'

export type Reply = Awaited<ReturnType<FastifyInstance['inject']>>

export const REDIS_URL = process.env.TEST_REDIS_URL

/** Limits on, and loud enough to reach in a test; each suite narrows them further. */
export const LIMITS_ON = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_PER_MINUTE: '100000' }

let addressCounter = 0
/**
 * A number no other call of this process got: each test file runs in a process of its own, with
 * an app (and counters) of its own, so unique per process is unique enough.
 */
export function nextAddressNumber(): number {
  addressCounter += 1
  return addressCounter
}
/** A client address no other request of this process has used (198.18.0.0/15, for testing). */
export function freshAddress(): string {
  addressCounter += 1
  return `198.18.${Math.floor(addressCounter / 250)}.${(addressCounter % 250) + 1}`
}

export const neverIssued = () => randomBytes(32).toString('base64url')

/** A registered user, registered from an address of its own (registration is limited too). */
export async function createUser(app: FastifyInstance) {
  const user = uniqueUser()
  const response = await app.inject({
    method: 'POST',
    url: '/users/',
    remoteAddress: freshAddress(),
    payload: user,
  })
  assert.equal(response.statusCode, 201, response.body)
  return { ...user, id: response.json<{ id: number }>().id }
}

export function attemptLogin(
  app: FastifyInstance,
  username: string,
  password: string,
  remoteAddress: string,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress,
    headers,
    payload: { username, password },
  })
}

/** Logs in from a fresh address; returns the token pair. */
export async function loginPair(app: FastifyInstance, user: { email: string; password: string }) {
  const response = await attemptLogin(app, user.email, user.password, freshAddress())
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ access_token: string; refresh_token: string }>()
}

export const integerHeader = (response: Reply, name: string) => {
  const value = response.headers[name]
  assert.match(String(value), /^\d+$/, `${name}: ${String(value)}`)
  return Number(value)
}

/**
 * A refusal by a rate limit: 429 application/problem+json, Retry-After in whole seconds (at most
 * the window), and the RateLimit-Limit / -Remaining / -Reset headers of the limit reached.
 */
export function assertTooMany(response: Reply, limit: number, windowSeconds: number) {
  const problem = assertProblem(response, 429)
  assert.equal(problem.title, 'Too Many Requests')
  const retryAfter = integerHeader(response, 'retry-after')
  assert.ok(retryAfter >= 1 && retryAfter <= windowSeconds, `retry-after ${retryAfter}`)
  assert.equal(integerHeader(response, 'ratelimit-limit'), limit)
  assert.equal(integerHeader(response, 'ratelimit-remaining'), 0)
  const reset = integerHeader(response, 'ratelimit-reset')
  assert.ok(reset >= 1 && reset <= windowSeconds, `ratelimit-reset ${reset}`)
  for (const secret of ['access_token', 'refresh_token']) assert.equal(secret in problem, false)
  return problem
}

/** The value of one sample of the app's Prometheus metrics (0 when absent). */
export async function metric(app: FastifyInstance, name: string, labels: Record<string, string>) {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',')
  const line = (await app.metrics.scrape())
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name}{${wanted}}`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A suite that needs a database but not a particular engine: SQLite, created and dropped here. */
export function withSqlite(ctx: { databaseUrl: string }) {
  let database: TestDatabase | undefined
  before(async () => {
    database = await testEngines()
      .find((engine) => engine.name === 'sqlite')!
      .create()
    ctx.databaseUrl = database.url
  })
  after(async () => database?.drop())
}

export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

export const uniquePrefix = (what: string) =>
  `fastauth-test:${what}:${process.pid}:${randomBytes(4).toString('hex')}:`

/** The attempt window of the suites that set one (RATE_LIMIT_ATTEMPT_WINDOW_SECONDS). */
export const WINDOW_SECONDS = 600
/** RATE_LIMIT_ATTEMPT_WINDOW_SECONDS when not set. */
export const DEFAULT_WINDOW = 900
