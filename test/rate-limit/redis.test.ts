/**
 * Rate limits through Redis: two instances sharing one Redis count together, and with Redis
 * stopped (or frozen) under a running instance the limits still hold per instance, never a 500.
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
import { captureLog, testConfig } from '../support/app.js'
import { REDIS_SERVER, freePort, startRedis, stopRedis } from '../support/processes.js'
import {
  DEFAULT_WINDOW,
  LIMITS_ON,
  REDIS_URL,
  assertTooMany,
  attemptLogin,
  createUser,
  freshAddress,
  keysUnder,
  uniquePrefix,
  until,
  withSqlite,
} from './support.js'

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

    test('a success on one instance clears the failures counted through the other', async () => {
      const user = await createUser(a!)
      for (let attempt = 1; attempt <= 3; attempt += 1)
        assert.equal((await attemptLogin(a!, user.email, 'wrong password', freshAddress())).statusCode, 401)
      assert.equal((await attemptLogin(b!, user.email, user.password, freshAddress())).statusCode, 200)
      for (let attempt = 1; attempt <= 4; attempt += 1)
        assert.equal((await attemptLogin(a!, user.email, 'wrong password', freshAddress())).statusCode, 401)
      assertTooMany(await attemptLogin(b!, user.email, user.password, freshAddress()), 4, DEFAULT_WINDOW)
    })

    test('the Redis counters: a hit taken back keeps its window; never a key without expiry or below zero', async () => {
      const counters = a!.rateLimitCounters
      const key = `probe:${randomBytes(6).toString('hex')}`
      const stored = `${prefix}rate:${key}`
      await counters.takeBack(key)
      assert.equal(await redis!.exists(stored), 0, 'taking back from nothing makes no key')
      await counters.hit(key, 60_000)
      await counters.hit(key, 60_000)
      await counters.takeBack(key)
      assert.equal(await redis!.get(stored), '1')
      const ttl = await redis!.pttl(stored)
      assert.ok(ttl > 0 && ttl <= 60_000, `the window's expiry stays: ${ttl}`)
      await counters.takeBack(key)
      await counters.takeBack(key)
      assert.equal(await redis!.get(stored), '0', 'not below zero')
      assert.equal((await counters.hit(key, 60_000)).count, 1)
      await counters.reset(key)
      assert.equal(await redis!.exists(stored), 0)
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
