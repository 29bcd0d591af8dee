/**
 * Rate limits as attacks: brute force on one account from
 * one address and from many (127.0.0.2…), one address spraying many accounts, spoofed forwarding
 * headers, the global per-IP limit on every request, each other limited route, two instances
 * sharing one Redis, and Redis stopped (and frozen) under a running instance.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import { clientKey } from '../../src/rate-limit/client-key.js'
import {
  assertProblem,
  captureLog,
  bearer,
  describeEachEngine,
  testConfig,
  testEngines,
  uniqueUser,
  type TestDatabase,
} from '../support/app.js'
import { REDIS_SERVER, freePort, startRedis, stopRedis } from '../support/processes.js'

// ------------------------------------------------------------------ helpers

type Reply = Awaited<ReturnType<FastifyInstance['inject']>>

const REDIS_URL = process.env.TEST_REDIS_URL

/** Limits on, and loud enough to reach in a test; each suite narrows them further. */
const LIMITS_ON = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_PER_MINUTE: '100000' }

let addressCounter = 0
/** A client address no other request of this process has used (198.18.0.0/15, for testing). */
function freshAddress(): string {
  addressCounter += 1
  return `198.18.${Math.floor(addressCounter / 250)}.${(addressCounter % 250) + 1}`
}

const neverIssued = () => randomBytes(32).toString('base64url')

/** A registered user, registered from an address of its own (registration is limited too). */
async function createUser(app: FastifyInstance) {
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

function attemptLogin(
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
async function loginPair(app: FastifyInstance, user: { email: string; password: string }) {
  const response = await attemptLogin(app, user.email, user.password, freshAddress())
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ access_token: string; refresh_token: string }>()
}

const integerHeader = (response: Reply, name: string) => {
  const value = response.headers[name]
  assert.match(String(value), /^\d+$/, `${name}: ${String(value)}`)
  return Number(value)
}

/**
 * A refusal by a rate limit: 429 application/problem+json, Retry-After in whole seconds (at most
 * the window), and the RateLimit-Limit / -Remaining / -Reset headers of the limit reached.
 */
function assertTooMany(response: Reply, limit: number, windowSeconds: number) {
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
async function metric(app: FastifyInstance, name: string, labels: Record<string, string>) {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',')
  const line = (await app.metrics.scrape())
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name}{${wanted}}`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A log captured line by line (JSON objects). */
/** A suite that needs a database but not a particular engine: SQLite, created and dropped here. */
function withSqlite(ctx: { databaseUrl: string }) {
  let database: TestDatabase | undefined
  before(async () => {
    database = await testEngines()
      .find((engine) => engine.name === 'sqlite')!
      .create()
    ctx.databaseUrl = database.url
  })
  after(async () => database?.drop())
}

async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

const uniquePrefix = (what: string) =>
  `fastauth-test:${what}:${process.pid}:${randomBytes(4).toString('hex')}:`

// ------------------------------------------------------------------ login: brute force

const PER_ACCOUNT = 5
const PER_IP = 8
const WINDOW_SECONDS = 600
/** RATE_LIMIT_ATTEMPT_WINDOW_SECONDS when not set. */
const DEFAULT_WINDOW = 900

describeEachEngine(
  'rate limits: brute force on /login',
  (ctx) => {
    test('one address, one account: 429 after the limit, with Retry-After and RateLimit headers', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const hitsBefore = await metric(ctx.app, 'rate_limit_hits_total', { route: '/login' })
      const eventsBefore = await metric(ctx.app, 'auth_events_total', { event: 'rate_limited' })
      const lockoutsBefore = await metric(ctx.app, 'auth_events_total', { event: 'lockout' })
      // The same account however its name is written: trimmed, any case.
      const spellings = [user.email, user.email.toUpperCase(), ` ${user.email} `]
      for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1) {
        const response = await attemptLogin(ctx.app, spellings[attempt % 3]!, 'wrong password', address)
        assertProblem(response, 401)
        assert.equal(integerHeader(response, 'ratelimit-limit'), PER_ACCOUNT)
        assert.equal(integerHeader(response, 'ratelimit-remaining'), PER_ACCOUNT - attempt)
      }
      const blocked = await attemptLogin(ctx.app, user.email, 'wrong password', address)
      assertTooMany(blocked, PER_ACCOUNT, WINDOW_SECONDS)

      // No oracle: the right password gets the same refusal, and no tokens.
      const right = await attemptLogin(ctx.app, user.email, user.password, address)
      const problem = assertTooMany(right, PER_ACCOUNT, WINDOW_SECONDS)
      const { detail: _detail, ...shape } = problem
      const { detail: _other, ...blockedShape } = blocked.json<Record<string, unknown>>()
      assert.deepEqual(shape, blockedShape)

      assert.equal(await metric(ctx.app, 'rate_limit_hits_total', { route: '/login' }), hitsBefore + 2)
      assert.equal(await metric(ctx.app, 'auth_events_total', { event: 'rate_limited' }), eventsBefore + 2)
      assert.equal(await metric(ctx.app, 'auth_events_total', { event: 'lockout' }), lockoutsBefore + 1)
    })

    test('one account attacked from many addresses (127.0.0.2…127.0.0.20) is stopped by the per-account limit', async () => {
      const user = await createUser(ctx.app)
      const other = await createUser(ctx.app)
      const statuses: number[] = []
      for (let host = 2; host <= 20; host += 1) {
        const response = await attemptLogin(ctx.app, user.name, 'wrong password', `127.0.0.${host}`)
        statuses.push(response.statusCode)
        if (host - 1 > PER_ACCOUNT) assertTooMany(response, PER_ACCOUNT, WINDOW_SECONDS)
      }
      assert.deepEqual(statuses, [...Array(PER_ACCOUNT).fill(401), ...Array(19 - PER_ACCOUNT).fill(429)])
      // The right password from yet another address: still refused while the block lasts.
      assertTooMany(
        await attemptLogin(ctx.app, user.name, user.password, '127.0.0.21'),
        PER_ACCOUNT,
        WINDOW_SECONDS,
      )
      // The addresses themselves are not blocked: another account logs in from one of them.
      const response = await attemptLogin(ctx.app, other.email, other.password, '127.0.0.20')
      assert.equal(response.statusCode, 200, response.body)
    })

    test('one address spraying many accounts is stopped by the per-IP limit', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const response = await attemptLogin(ctx.app, `nobody-${attempt}-${user.name}`, 'guess', address)
        assertProblem(response, 401)
        assert.equal(
          integerHeader(response, 'ratelimit-remaining'),
          Math.min(PER_ACCOUNT - 1, PER_IP - attempt),
        )
      }
      // A real account with its right password, from the sprayer: refused.
      assertTooMany(await attemptLogin(ctx.app, user.email, user.password, address), PER_IP, WINDOW_SECONDS)
      // The account itself is not blocked: its owner logs in from elsewhere.
      const response = await attemptLogin(ctx.app, user.email, user.password, freshAddress())
      assert.equal(response.statusCode, 200, response.body)
    })

    test('the limit is checked before the account is looked up or any password hashed', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const users = ctx.app.repos.users
      const original = users.findCredentialsByLogin
      let lookups = 0
      users.findCredentialsByLogin = (async (...args: Parameters<typeof original>) => {
        lookups += 1
        return original.apply(users, args)
      }) as typeof original
      try {
        for (let attempt = 1; attempt <= PER_ACCOUNT; attempt += 1)
          assertProblem(await attemptLogin(ctx.app, user.email, 'wrong password', address), 401)
        assert.equal(lookups, PER_ACCOUNT)
        for (const password of ['wrong password', user.password, 'another guess'])
          assertTooMany(
            await attemptLogin(ctx.app, user.email, password, address),
            PER_ACCOUNT,
            WINDOW_SECONDS,
          )
        assert.equal(lookups, PER_ACCOUNT, 'a refused attempt reached the account lookup')
      } finally {
        users.findCredentialsByLogin = original
      }
    })

    test('spoofed X-Forwarded-For / X-Real-IP / Forwarded neither reset nor dodge the counter', async () => {
      const user = await createUser(ctx.app)
      const address = freshAddress()
      const spoof = (attempt: number) => ({
        'x-forwarded-for': `203.0.113.${attempt}`,
        'x-real-ip': `203.0.113.${attempt + 100}`,
        forwarded: `for=203.0.113.${attempt + 200}`,
      })
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const response = await attemptLogin(
          ctx.app,
          `nobody-${attempt}-${user.name}`,
          'guess',
          address,
          spoof(attempt),
        )
        assertProblem(response, 401)
        // One counter, whatever the headers say: it only goes down. (The headers tell the tighter
        // limit: each account is fresh, so the account's until the address has fewer left.)
        assert.equal(
          integerHeader(response, 'ratelimit-remaining'),
          Math.min(PER_ACCOUNT - 1, PER_IP - attempt),
        )
      }
      for (const headers of [spoof(50), spoof(51), {}, { 'x-forwarded-for': address }] as Record<
        string,
        string
      >[])
        assertTooMany(
          await attemptLogin(ctx.app, user.email, user.password, address, headers),
          PER_IP,
          WINDOW_SECONDS,
        )
    })

    test('rotating through the addresses of one IPv6 /64 does not dodge the per-IP limit', async () => {
      const user = await createUser(ctx.app)
      const network = `2001:db8:${(addressCounter += 1).toString(16)}:7`
      for (let attempt = 1; attempt <= PER_IP; attempt += 1) {
        const address = `${network}::${attempt.toString(16)}`
        assertProblem(await attemptLogin(ctx.app, `nobody-${attempt}-${user.name}`, 'guess', address), 401)
      }
      assertTooMany(
        await attemptLogin(ctx.app, user.email, user.password, `${network}:ffff:ffff:ffff:ffff`),
        PER_IP,
        WINDOW_SECONDS,
      )
      // The next /64 is someone else.
      const response = await attemptLogin(ctx.app, user.email, user.password, `${network.slice(0, -1)}8::1`)
      assert.equal(response.statusCode, 200, response.body)
    })
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
      RATE_LIMIT_ATTEMPTS_PER_IP: String(PER_IP),
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  },
)

// ------------------------------------------------------------------ the block ends by itself

const SHORT_WINDOW = 2

describeEachEngine(
  'rate limits: a block ends by itself',
  (ctx) => {
    test(
      'after the window, the right password works again (bounded polling)',
      { timeout: 30_000 },
      async () => {
        const user = await createUser(ctx.app)
        const address = freshAddress()
        // Fast enough to fill the window before it ends; polled, so a slow machine only waits longer.
        await until(
          async () => (await attemptLogin(ctx.app, user.email, 'wrong password', address)).statusCode === 429,
          'the account is blocked',
        )
        const blocked = await attemptLogin(ctx.app, user.email, user.password, address)
        assertTooMany(blocked, 2, SHORT_WINDOW)
        await until(async () => {
          const response = await attemptLogin(ctx.app, user.email, user.password, address)
          if (response.statusCode !== 429) assert.equal(response.statusCode, 200, response.body)
          return response.statusCode === 200
        }, 'the block to lift')
      },
    )
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: '2',
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(SHORT_WINDOW),
    },
  },
)

// ------------------------------------------------------------------ the other limited routes

const ROUTE_LIMIT = 3

describeEachEngine(
  'rate limits: registration, refresh, recovery, reset, verification, resend',
  (ctx) => {
    test('registration: one email from many addresses, and many emails from one address', async () => {
      const user = uniqueUser()
      const statuses: number[] = []
      for (let attempt = 1; attempt <= ROUTE_LIMIT + 1; attempt += 1) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/users/',
          remoteAddress: freshAddress(),
          payload: { ...uniqueUser(), email: attempt % 2 ? user.email : user.email.toUpperCase() },
        })
        statuses.push(response.statusCode)
        if (attempt > ROUTE_LIMIT) assertTooMany(response, ROUTE_LIMIT, WINDOW_SECONDS)
      }
      assert.deepEqual(statuses, [201, 409, 409, 429])

      const address = freshAddress()
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/users/',
          remoteAddress: address,
          payload: uniqueUser(),
        })
        assert.equal(response.statusCode, 201, response.body)
      }
      const refused = uniqueUser()
      assertTooMany(
        await ctx.app.inject({ method: 'POST', url: '/users/', remoteAddress: address, payload: refused }),
        ROUTE_LIMIT,
        WINDOW_SECONDS,
      )
      // Refused before anything was created: the same registration works from elsewhere.
      const elsewhere = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        remoteAddress: freshAddress(),
        payload: refused,
      })
      assert.equal(elsewhere.statusCode, 201, elsewhere.body)
    })

    test('refresh: guessing tokens from one address is stopped, and a real token gets 429 too', async () => {
      const pair = await loginPair(ctx.app, await createUser(ctx.app))
      const address = freshAddress()
      const refresh = (token: string, remoteAddress: string) =>
        ctx.app.inject({
          method: 'POST',
          url: '/token/refresh',
          remoteAddress,
          payload: { refresh_token: token },
        })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assertProblem(await refresh(neverIssued(), address), 401)
      assertTooMany(await refresh(pair.refresh_token, address), ROUTE_LIMIT, WINDOW_SECONDS)
      // The refused request did not spend the token.
      const response = await refresh(pair.refresh_token, freshAddress())
      assert.equal(response.statusCode, 200, response.body)
    })

    test('password recovery: one email from many addresses, and one address for many emails', async () => {
      const user = await createUser(ctx.app)
      const recover = (email: string, remoteAddress: string) =>
        ctx.app.inject({ method: 'POST', url: '/password-recovery', remoteAddress, payload: { email } })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assert.equal((await recover(user.email, freshAddress())).statusCode, 202)
      assertTooMany(await recover(user.email.toUpperCase(), freshAddress()), ROUTE_LIMIT, WINDOW_SECONDS)

      const address = freshAddress()
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1)
        assert.equal((await recover(uniqueUser().email, address)).statusCode, 202)
      assertTooMany(await recover(uniqueUser().email, address), ROUTE_LIMIT, WINDOW_SECONDS)
    })

    test('reset-password and verify-email: guessing tokens from one address is stopped', async () => {
      const routes = [
        {
          url: '/reset-password',
          payload: () => ({ token: neverIssued(), new_password: 'a new long passphrase' }),
        },
        { url: '/verify-email', payload: () => ({ token: neverIssued() }) },
      ]
      for (const { url, payload } of routes) {
        const address = freshAddress()
        for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
          const response = await ctx.app.inject({
            method: 'POST',
            url,
            remoteAddress: address,
            payload: payload(),
          })
          assertProblem(response, 400)
        }
        const response = await ctx.app.inject({
          method: 'POST',
          url,
          remoteAddress: address,
          payload: payload(),
        })
        assertTooMany(response, ROUTE_LIMIT, WINDOW_SECONDS)
        // Another address is not affected.
        const other = await ctx.app.inject({
          method: 'POST',
          url,
          remoteAddress: freshAddress(),
          payload: payload(),
        })
        assertProblem(other, 400)
      }
    })

    test('verify-email/resend: limited per account, whatever the address', async () => {
      const user = await createUser(ctx.app)
      const { access_token: token } = await loginPair(ctx.app, user)
      const resend = () =>
        ctx.app.inject({
          method: 'POST',
          url: '/verify-email/resend',
          remoteAddress: freshAddress(),
          headers: bearer(token),
        })
      for (let attempt = 1; attempt <= ROUTE_LIMIT; attempt += 1) {
        const response = await resend()
        assert.equal(response.statusCode, 202, response.body)
      }
      assertTooMany(await resend(), ROUTE_LIMIT, WINDOW_SECONDS)
      // Someone else is not affected.
      const other = await loginPair(ctx.app, await createUser(ctx.app))
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/verify-email/resend',
        remoteAddress: freshAddress(),
        headers: bearer(other.access_token),
      })
      assert.equal(response.statusCode, 202, response.body)
    })
  },
  {
    env: {
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(ROUTE_LIMIT),
      RATE_LIMIT_ATTEMPTS_PER_IP: String(ROUTE_LIMIT),
      RATE_LIMIT_ATTEMPT_WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  },
)

// ------------------------------------------------------------------ the global per-IP limit

describe('rate limits: the global per-IP limit', () => {
  const ctx = {} as { databaseUrl: string; app: FastifyInstance }
  const PER_MINUTE = 5
  withSqlite(ctx)
  before(async () => {
    ctx.app = await buildApp(
      testConfig({
        DATABASE_URL: ctx.databaseUrl,
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_PER_MINUTE: String(PER_MINUTE),
      }),
      { logger: false },
    )
    await ctx.app.ready()
  })
  after(async () => ctx.app?.close())

  test('every request from one address counts; past the limit any route answers 429 problem+json', async () => {
    const address = freshAddress()
    for (let request = 1; request <= PER_MINUTE; request += 1) {
      const response = await ctx.app.inject({ url: '/healthz', remoteAddress: address })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(integerHeader(response, 'ratelimit-limit'), PER_MINUTE)
      assert.equal(integerHeader(response, 'ratelimit-remaining'), PER_MINUTE - request)
    }
    const hitsBefore = await metric(ctx.app, 'rate_limit_hits_total', { route: '/healthz' })
    assertTooMany(await ctx.app.inject({ url: '/healthz', remoteAddress: address }), PER_MINUTE, 60)
    assert.equal(await metric(ctx.app, 'rate_limit_hits_total', { route: '/healthz' }), hitsBefore + 1)
    // Before routing, parsing, validation and authentication: no 404, 422, 415 or 401 first.
    const others = [
      ctx.app.inject({ url: '/no-such-route', remoteAddress: address }),
      ctx.app.inject({ method: 'POST', url: '/login', remoteAddress: address, payload: { username: 1 } }),
      ctx.app.inject({
        method: 'POST',
        url: '/users/',
        remoteAddress: address,
        headers: { 'content-type': 'text/plain' },
        payload: 'hello',
      }),
      ctx.app.inject({ url: '/current-user', remoteAddress: address }),
      ctx.app.inject({
        url: '/healthz',
        remoteAddress: address,
        headers: { 'x-forwarded-for': freshAddress() },
      }),
    ]
    for (const response of await Promise.all(others)) assertTooMany(response, PER_MINUTE, 60)
    assert.ok((await metric(ctx.app, 'rate_limit_hits_total', { route: 'unmatched' })) >= 1)
    // Another address is not affected.
    const response = await ctx.app.inject({ url: '/healthz', remoteAddress: freshAddress() })
    assert.equal(response.statusCode, 200)
  })

  test('the OpenAPI document declares the 429 (problem+json) on the routes', async () => {
    const response = await ctx.app.inject({ url: '/openapi.json', remoteAddress: freshAddress() })
    assert.equal(response.statusCode, 200)
    const doc = response.json<{
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
    }>()
    for (const [path, method] of [
      ['/login', 'post'],
      ['/users/', 'post'],
      ['/token/refresh', 'post'],
      ['/product/', 'get'],
    ] as const) {
      const declared = doc.paths[path]?.[method]?.responses['429'] as
        { content?: Record<string, unknown> } | undefined
      assert.ok(declared?.content?.['application/problem+json'], `${method} ${path}: no 429 declared`)
    }
  })
})

describe('rate limits: a flood is logged once per window, and counted in full', () => {
  const ctx = {} as { databaseUrl: string }
  withSqlite(ctx)

  test('ten refused requests: ten in the metrics, one warning in the log', async () => {
    const log = captureLog()
    const app = await buildApp(
      testConfig({ DATABASE_URL: ctx.databaseUrl, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_PER_MINUTE: '2' }),
      { logger: log.logger },
    )
    try {
      await app.ready()
      const address = freshAddress()
      const statuses: number[] = []
      for (let request = 0; request < 12; request += 1)
        statuses.push((await app.inject({ url: '/healthz', remoteAddress: address })).statusCode)
      assert.deepEqual(statuses, [200, 200, ...Array(10).fill(429)])
      assert.equal(await metric(app, 'rate_limit_hits_total', { route: '/healthz' }), 10)
      const warnings = log.lines.filter(
        (line) => (line as { event?: string }).event === 'rate_limited' && line.level === 40,
      )
      assert.equal(warnings.length, 1)
    } finally {
      await app.close()
    }
  })
})

describe('rate limits: client keys', () => {
  test('IPv4 as is (also IPv4-mapped), IPv6 by its /64 network', () => {
    assert.equal(clientKey('192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('::FFFF:192.0.2.1'), '192.0.2.1')
    assert.equal(clientKey('2001:db8:1:2::1'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:db8:1:2:3:4:198.51.100.1'), '2001:db8:1:2::/64')
    assert.equal(clientKey('2001:db8::'), '2001:db8:0:0::/64')
    assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'))
    assert.equal(clientKey('unix-socket'), 'unix-socket')
  })
})

// ------------------------------------------------------------------ behind a trusted proxy

describe('rate limits: TRUST_PROXY=127.0.0.1', () => {
  const ctx = {} as { databaseUrl: string; app: FastifyInstance; config: Config }
  withSqlite(ctx)
  before(async () => {
    ctx.config = testConfig({
      DATABASE_URL: ctx.databaseUrl,
      ...LIMITS_ON,
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_ATTEMPTS_PER_IP: '3',
    })
    ctx.app = await buildApp(ctx.config, { logger: false })
    await ctx.app.ready()
  })
  after(async () => ctx.app?.close())

  const viaProxy = (forwardedFor: string, username = `nobody-${randomBytes(4).toString('hex')}`) =>
    attemptLogin(ctx.app, username, 'guess', '127.0.0.1', { 'x-forwarded-for': forwardedFor })

  test('the client address the proxy forwards is the key; what the client prepends is not', async () => {
    for (let attempt = 1; attempt <= 3; attempt += 1) assertProblem(await viaProxy('198.51.100.7'), 401)
    assertTooMany(await viaProxy('198.51.100.7'), 3, DEFAULT_WINDOW)
    // The client wrote its own X-Forwarded-For; the proxy appended the real address.
    assertTooMany(await viaProxy('203.0.113.1, 198.51.100.7'), 3, DEFAULT_WINDOW)
    assertTooMany(await viaProxy('198.51.100.8, 198.51.100.7'), 3, DEFAULT_WINDOW)
    // Another client behind the same proxy is not affected.
    assertProblem(await viaProxy('198.51.100.8'), 401)
  })

  test('an address that is not a trusted proxy is keyed by its socket address, whatever it forwards', async () => {
    const direct = '127.0.0.9'
    for (let attempt = 1; attempt <= 3; attempt += 1)
      assertProblem(
        await attemptLogin(ctx.app, `nobody-${attempt}`, 'guess', direct, {
          'x-forwarded-for': '198.51.100.9',
        }),
        401,
      )
    assertTooMany(
      await attemptLogin(ctx.app, 'nobody', 'guess', direct, { 'x-forwarded-for': '198.51.100.10' }),
      3,
      DEFAULT_WINDOW,
    )
    // The address it claimed was never charged: through the proxy it has its full allowance.
    for (let attempt = 1; attempt <= 3; attempt += 1) assertProblem(await viaProxy('198.51.100.9'), 401)
  })
})

// ------------------------------------------------------------------ two instances, one Redis

describe(
  'rate limits: two instances sharing one Redis',
  { skip: REDIS_URL ? false : 'TEST_REDIS_URL is not set' },
  () => {
    const ctx = {} as { databaseUrl: string }
    const prefix = uniquePrefix('rate-limit')
    let a: FastifyInstance | undefined
    let b: FastifyInstance | undefined
    let redis: Redis | undefined
    withSqlite(ctx)

    before(async () => {
      const config = testConfig({
        DATABASE_URL: ctx.databaseUrl,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_PER_MINUTE: '6',
        RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: '4',
        RATE_LIMIT_ATTEMPTS_PER_IP: '100',
      })
      a = await buildApp(config, { logger: false })
      b = await buildApp(config, { logger: false })
      await Promise.all([a.ready(), b.ready()])
      redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
      await redis.connect()
    })
    after(async () => {
      await a?.close()
      await b?.close()
      if (redis) {
        const keys = await keysUnder(redis, prefix)
        if (keys.length > 0) await redis.del(...keys)
        await redis.quit()
      }
    })

    test('attempts split across both instances are counted together, in Redis', async () => {
      assert.equal(a!.rateLimitCounters.kind, 'redis')
      const user = await createUser(a!)
      const statuses: number[] = []
      for (let attempt = 1; attempt <= 6; attempt += 1) {
        const app = attempt % 2 ? a! : b!
        statuses.push((await attemptLogin(app, user.email, 'wrong password', freshAddress())).statusCode)
      }
      assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429])
      assertTooMany(await attemptLogin(b!, user.email, user.password, freshAddress()), 4, DEFAULT_WINDOW)
      assertTooMany(await attemptLogin(a!, user.email, user.password, freshAddress()), 4, DEFAULT_WINDOW)
      // The counters are under the prefix, and name no account in clear.
      const keys = await keysUnder(redis!, prefix)
      assert.ok(
        keys.some((key) => key.startsWith(`${prefix}rate:attempt:login:account:`)),
        keys.join(', '),
      )
      assert.equal(
        keys.some((key) => key.toLowerCase().includes(user.email.toLowerCase())),
        false,
      )
    })

    test('the global per-IP limit is shared too', async () => {
      const address = freshAddress()
      for (let request = 1; request <= 6; request += 1) {
        const response = await (request % 2 ? a! : b!).inject({ url: '/healthz', remoteAddress: address })
        assert.equal(response.statusCode, 200, `request ${request}`)
      }
      assertTooMany(await a!.inject({ url: '/healthz', remoteAddress: address }), 6, 60)
      assertTooMany(await b!.inject({ url: '/healthz', remoteAddress: address }), 6, 60)
    })
  },
)

// ------------------------------------------------------------------ Redis going away

const outageSkip = !REDIS_URL
  ? 'TEST_REDIS_URL is not set'
  : !existsSync(REDIS_SERVER)
    ? `${REDIS_SERVER} is not installed`
    : false

describe('rate limits: Redis stopped under a running instance', { skip: outageSkip }, () => {
  const ctx = {} as { databaseUrl: string }
  const prefix = uniquePrefix('rate-limit-outage')
  const LIMIT = 3
  const log = captureLog()
  let config: Config
  let port: number
  let child: ChildProcess | undefined
  let app: FastifyInstance | undefined
  let second: FastifyInstance | undefined
  withSqlite(ctx)

  before(async () => {
    port = await freePort()
    child = await startRedis(port)
    config = testConfig({
      DATABASE_URL: ctx.databaseUrl,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'info',
      ...LIMITS_ON,
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(LIMIT),
      RATE_LIMIT_ATTEMPTS_PER_IP: '1000',
    })
    app = await buildApp(config, { logger: log.logger })
    await app.ready()
  })
  after(async () => {
    // The child first: a frozen Redis must not hold the app's shutdown.
    try {
      await stopRedis(child)
    } finally {
      await app?.close()
      await second?.close()
    }
  })

  /** LIMIT wrong passwords answer 401, the next attempt (even the right password) 429; never a 500. */
  async function assertLimited(instances: FastifyInstance[], what: string) {
    const user = await createUser(instances[0]!)
    const statuses: number[] = []
    for (let attempt = 0; attempt <= LIMIT; attempt += 1) {
      const instance = instances[attempt % instances.length]!
      const password = attempt === LIMIT ? user.password : 'wrong password'
      const response = await attemptLogin(instance, user.email, password, freshAddress())
      statuses.push(response.statusCode)
      if (attempt === LIMIT) assertTooMany(response, LIMIT, DEFAULT_WINDOW)
    }
    assert.deepEqual(statuses, [...Array(LIMIT).fill(401), 429], what)
  }

  const errorLogged = () =>
    log.lines.some((line) => line.level === 50 && line.msg.startsWith('redis is unavailable'))

  test(
    'while Redis is down the limits hold per instance and an error is logged; when it is back they are shared again',
    { timeout: 60_000 },
    async () => {
      await assertLimited([app!], 'Redis up')
      const probe = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 })
      try {
        const keys = await keysUnder(probe, prefix)
        assert.ok(
          keys.some((key) => key.startsWith(`${prefix}rate:attempt:login:`)),
          keys.join(', '),
        )
      } finally {
        probe.disconnect()
      }
      assert.equal(errorLogged(), false)

      await stopRedis(child)
      await until(() => app!.redis?.status !== 'ready', 'the app notices that Redis is gone')
      await assertLimited([app!], 'Redis down')
      assert.ok(errorLogged(), 'no error logged for the Redis outage')

      // Back (empty): a second instance joins, and attempts split across both are counted together.
      child = await startRedis(port)
      await until(() => app!.redis?.status === 'ready', 'the app reconnects to Redis')
      const prober = freshAddress()
      await until(async () => {
        await attemptLogin(app!, `probe-${randomBytes(4).toString('hex')}`, 'guess', prober)
        return log.lines.some((line) => line.msg.startsWith('redis is available again'))
      }, 'the limits use Redis again')
      second = await buildApp(config, { logger: false })
      await second.ready()
      await assertLimited([app!, second], 'Redis back, two instances')
    },
  )

  test(
    'a Redis that stops answering (frozen): the limits still hold, never a 500',
    { timeout: 60_000 },
    async () => {
      if (child!.exitCode !== null || child!.signalCode !== null) child = await startRedis(port)
      await until(() => app!.redis?.status === 'ready', 'the app is connected to Redis')
      child!.kill('SIGSTOP')
      try {
        await assertLimited([app!], 'Redis frozen')
      } finally {
        child!.kill('SIGCONT')
      }
    },
  )
})
