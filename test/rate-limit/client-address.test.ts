/**
 * Whose counter a request charges: the client key of an address (IPv6 by its /64), and behind a
 * trusted proxy the address it forwards, while anyone else's forwarding headers change nothing.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import { clientKey } from '../../src/rate-limit/client-key.js'
import { assertProblem, testConfig } from '../support/app.js'
import { DEFAULT_WINDOW, LIMITS_ON, assertTooMany, attemptLogin, withSqlite } from './support.js'

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
