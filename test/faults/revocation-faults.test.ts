/**
 * Revocation under Redis faults, with the faults injected for real: a TCP proxy between one
 * instance and Redis is cut or frozen while a second instance keeps its own, healthy link.
 *
 * The guarantee (docs/security.md): an acknowledged logout (password change, reset,
 * deactivation, deletion) is refused by every instance within one second, whatever part of Redis
 * fails; and a Redis that does not answer holds no request (a circuit breaker, not a command
 * timeout per request).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { MAX_LAG_MS } from '../../src/auth/revocation.js'
import {
  assertProblem,
  bearer,
  captureLog,
  describeEachEngine,
  registerAndLogin,
  testConfig,
} from '../support/app.js'
import { until } from '../support/processes.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

const REDIS_URL = process.env.TEST_REDIS_URL
const skip = REDIS_URL ? false : 'TEST_REDIS_URL is not set'

const prefixFor = (name: string) => `fastauth-test:${name}:${Date.now().toString(36)}:`

async function status(app: FastifyInstance, token: string) {
  return (await app.inject({ method: 'GET', url: '/current-user', headers: bearer(token) })).statusCode
}

/** Waits out the guarantee from `since`: after that, every instance must answer right. */
async function afterGuarantee(since: number) {
  const left = since + MAX_LAG_MS - Date.now()
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left + 20))
}

/** Counts the commands an instance sends to Redis (every ioredis command goes through sendCommand). */
function countCommands(redis: Redis) {
  const counter = { count: 0, restore: () => {} }
  const original = redis.sendCommand.bind(redis)
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    counter.count += 1
    return original(...args)
  }) as Redis['sendCommand']
  counter.restore = () => {
    redis.sendCommand = original
  }
  return counter
}

describeEachEngine('revocation when one instance loses Redis', (ctx) => {
  describe('A behind a proxy to Redis, B connected directly', { skip }, () => {
    let proxy: TcpProxy
    let a: FastifyInstance | undefined
    let b: FastifyInstance | undefined
    const aLog = captureLog()

    before(async () => {
      proxy = await startTcpProxy(REDIS_URL!)
      const prefix = prefixFor('revocation-faults')
      a = await buildApp(
        testConfig({
          DATABASE_URL: ctx.databaseUrl,
          REDIS_URL: proxy.rewrite(REDIS_URL!),
          REDIS_KEY_PREFIX: prefix,
          LOG_LEVEL: 'info',
        }),
        { logger: aLog.logger },
      )
      b = await buildApp(
        testConfig({ DATABASE_URL: ctx.databaseUrl, REDIS_URL: REDIS_URL!, REDIS_KEY_PREFIX: prefix }),
        { logger: false },
      )
      await Promise.all([a.ready(), b.ready()])
    })
    after(async () => {
      proxy?.resume()
      await proxy?.close()
      await a?.close()
      await b?.close()
    })

    /** A's link to Redis works again, and A knows it. */
    async function healRedisLink() {
      proxy.resume()
      await proxy.acceptNew()
      await until(
        () => a!.redis?.status === 'ready' && a!.redisMonitor!.available,
        'A is connected to Redis again',
      )
    }

    test('A cut off from Redis: its logout is refused by B within one second', async () => {
      await healRedisLink()
      const user = await registerAndLogin(a!)
      assert.equal(await status(b!, user.token), 200)

      proxy.cut()
      await proxy.refuseNew()
      await until(() => a!.redis?.status !== 'ready', 'A notices that Redis is gone')

      const response = await a!.inject({ method: 'POST', url: '/logout', headers: user.headers })
      assert.equal(response.statusCode, 204, response.body)
      const acknowledged = Date.now()
      // A refuses it at once; B, whose Redis never heard of it, within the guarantee.
      assert.equal(await status(a!, user.token), 401)
      await afterGuarantee(acknowledged)
      assertProblem(await b!.inject({ method: 'GET', url: '/current-user', headers: user.headers }), 401)
    })

    test('A frozen on its Redis link: a password change is refused by B within one second', async () => {
      await healRedisLink()
      const user = await registerAndLogin(a!)
      // A second session of the same user, logged in through B: the password change ends it.
      const login = await b!.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
      })
      assert.equal(login.statusCode, 200, login.body)
      const secondToken = login.json<{ access_token: string }>().access_token
      assert.equal(await status(b!, secondToken), 200)

      proxy.pause()
      const response = await a!.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: user.headers,
        payload: { current_password: user.password, new_password: `${user.password} and more` },
      })
      assert.equal(response.statusCode, 204, response.body)
      const acknowledged = Date.now()
      await afterGuarantee(acknowledged)
      assert.equal(await status(b!, secondToken), 401, 'the other session, on B')
      assert.equal(await status(a!, secondToken), 401, 'the other session, on A')
      assert.equal(await status(b!, user.token), 200, 'the session that changed it stays')
      proxy.resume()
    })

    test('Redis answering again: a logout on A is refused by B on the very next request', async () => {
      await healRedisLink()
      const user = await registerAndLogin(a!)
      assert.equal(await status(b!, user.token), 200)
      const response = await a!.inject({ method: 'POST', url: '/logout', headers: user.headers })
      assert.equal(response.statusCode, 204, response.body)
      assert.equal(await status(b!, user.token), 401)
    })

    test('a frozen Redis costs one request its timeout, not every request (circuit breaker)', async () => {
      await healRedisLink()
      const users = await Promise.all([registerAndLogin(a!), registerAndLogin(a!)])
      const [kept, loggedOut] = users
      assert.equal(
        (await a!.inject({ method: 'POST', url: '/logout', headers: loggedOut!.headers })).statusCode,
        204,
      )

      const linesBefore = aLog.lines.length
      proxy.pause()
      const commands = countCommands(a!.redis!)
      try {
        const statuses: number[] = []
        for (let i = 0; i < 30; i += 1) {
          statuses.push(await status(a!, kept!.token))
          statuses.push(await status(a!, loggedOut!.token))
        }
        assert.deepEqual(new Set(statuses), new Set([200, 401]))
        assert.deepEqual(
          statuses.filter((_, i) => i % 2 === 0),
          Array(30).fill(200),
        )
        assert.equal(a!.redisMonitor!.available, false, 'the breaker is open')
        // The first check waited for Redis and failed; the other 59 went to the list directly (a
        // probe a second may have gone out meanwhile).
        assert.ok(commands.count <= 4, `${commands.count} Redis commands for 60 requests`)
        // And one log line for the outage, not a warning per request.
        const warnings = aLog.lines.slice(linesBefore).filter((line) => line.level >= 40)
        assert.deepEqual(
          warnings.map((line) => line.msg.split(' (')[0]),
          ['redis is unavailable'],
        )
      } finally {
        commands.restore()
        proxy.resume()
      }
      await until(() => a!.redisMonitor!.available, 'the probe finds Redis again')
    })
  })
})
