/**
 * The global per-IP limit on every request (before routing, parsing and authentication, and
 * declared in the OpenAPI document), and a flood logged once per window but counted in full.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { captureLog, testConfig } from '../support/app.js'
import { assertTooMany, freshAddress, integerHeader, metric, withSqlite } from './support.js'

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
