/** Security headers, Cache-Control on tokens and user data, CORS, unknown routes and request ids. */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  registerAndLogin,
  testConfig,
  uniqueUser,
} from '../support/app.js'
import { parseCsp, assertApiHeaders } from './support.js'

// ------------------------------------------------------------------ headers

describe('security headers (helmet)', () => {
  let app: FastifyInstance
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    await app.ready()
  })
  after(() => app?.close())

  test('every kind of API response carries the strict headers, and no X-Powered-By', async () => {
    const responses = {
      '200 /healthz': await app.inject('/healthz'),
      '200 /openapi.json': await app.inject('/openapi.json'),
      '401 /current-user': await app.inject('/current-user'),
      '404 unknown route': await app.inject('/no/such/route'),
      '405 DELETE /login': await app.inject({ method: 'DELETE', url: '/login' }),
      '422 POST /users/': await app.inject({ method: 'POST', url: '/users/', payload: {} }),
      '415 text/plain': await app.inject({
        method: 'POST',
        url: '/users/',
        headers: { 'content-type': 'text/plain' },
        payload: 'x',
      }),
      '400 bad JSON': await app.inject({
        method: 'POST',
        url: '/users/',
        headers: { 'content-type': 'application/json' },
        payload: '{"name":',
      }),
    }
    for (const [what, response] of Object.entries(responses)) assertApiHeaders(response, what)
  })

  test('HSTS is sent only when PUBLIC_URL is https', async () => {
    const https = await buildApp(
      testConfig({ DATABASE_URL: 'sqlite::memory:', PUBLIC_URL: 'https://api.example.com' }),
      { logger: false },
    )
    try {
      const response = await https.inject('/healthz')
      assert.equal(response.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
    } finally {
      await https.close()
    }
    assert.equal((await app.inject('/healthz')).headers['strict-transport-security'], undefined)
  })

  test('the docs pages have a CSP that lets Swagger UI and ReDoc run from the server itself, and nothing else', async () => {
    for (const url of ['/docs', '/docs/', '/redoc']) {
      const page = await app.inject(url)
      assert.equal(page.statusCode, 200, url)
      const csp = parseCsp(page.headers['content-security-policy'])
      assert.deepEqual(csp.get('default-src'), ["'none'"], `${url}: default-src`)
      // Scripts from the server only: no inline script, no eval, no other host.
      assert.deepEqual(csp.get('script-src'), ["'self'"], `${url}: script-src`)
      assert.deepEqual(csp.get('object-src'), ["'none'"], `${url}: object-src`)
      assert.deepEqual(csp.get('base-uri'), ["'none'"], `${url}: base-uri`)
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], `${url}: frame-ancestors`)
      // What the bundles need (see helmet.ts): inline styles, data: icons, ReDoc's search worker.
      assert.deepEqual(csp.get('style-src'), ["'self'", "'unsafe-inline'"], `${url}: style-src`)
      assert.deepEqual(csp.get('img-src'), ["'self'", 'data:'], `${url}: img-src`)
      assert.deepEqual(csp.get('worker-src'), ['blob:'], `${url}: worker-src`)
      assert.ok(
        csp.get('connect-src')?.includes("'self'"),
        `${url}: the spec and "Try it out" may be fetched`,
      )
      // No other site anywhere, except PUBLIC_URL (the API's own address) for connect-src.
      for (const [name, values] of csp)
        for (const value of values)
          if (/^(https?:|\*|wss?:)/.test(value))
            assert.ok(name === 'connect-src' && value === 'http://127.0.0.1:8000', `${url}: ${name} ${value}`)

      // The policy holds the page: no inline script or inline event handler that it would block.
      const html = page.body
      for (const match of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
        assert.match(match[1]!, /\bsrc=/, `${url}: every script has a src`)
        assert.equal(match[2]!.trim(), '', `${url}: no inline script`)
      }
      assert.doesNotMatch(html, /\son[a-z]+\s*=/i, `${url}: no inline event handler`)
    }
  })

  test('the docs assets are served with the docs policy, and the API never gets it', async () => {
    for (const url of ['/docs/static/swagger-ui-bundle.js', '/redoc/redoc.standalone.js', '/redoc/init.js']) {
      const asset = await app.inject(url)
      assert.equal(asset.statusCode, 200, url)
      assert.match(String(asset.headers['content-type']), /javascript/, url)
      assert.equal(asset.headers['x-content-type-options'], 'nosniff', url)
    }
    const api = parseCsp((await app.inject('/healthz')).headers['content-security-policy'])
    assert.equal(api.get('script-src'), undefined)
    assert.equal(api.get('style-src'), undefined)
  })

  test('the account pages keep their own strict policy, sent once', async () => {
    for (const url of ['/reset-password?token=abc', '/verify-email?token=abc']) {
      const page = await app.inject(url)
      assert.equal(page.statusCode, 200, url)
      const header = page.headers['content-security-policy']
      assert.equal(typeof header, 'string', `${url}: one CSP header`)
      const csp = parseCsp(header)
      assert.deepEqual(csp.get('script-src'), ["'self'"], url)
      assert.deepEqual(csp.get('connect-src'), ["'self'"], url)
      assert.deepEqual(csp.get('form-action'), ["'none'"], url)
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], url)
      assert.equal(page.headers['cache-control'], 'no-store', url)
      assert.equal(page.headers['referrer-policy'], 'no-referrer', url)
    }
  })
})

// ------------------------------------------------------------------ caching

describeEachEngine('Cache-Control: no-store on tokens and user data', (ctx) => {
  test('every answer with a token or user data says no-store; the docs bundles may be cached', async () => {
    const admin = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', admin.id).execute()
    const user = uniqueUser()
    const registered = await ctx.app.inject({ method: 'POST', url: '/users/', payload: user })
    const login = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      payload: { username: user.email, password: user.password },
    })
    const { access_token, refresh_token } = login.json<{ access_token: string; refresh_token: string }>()
    const refreshed = await ctx.app.inject({
      method: 'POST',
      url: '/token/refresh',
      payload: { refresh_token },
    })
    const token = refreshed.json<{ access_token: string }>().access_token
    assert.ok(access_token && token)
    const id = registered.json<{ id: number }>().id
    const answers = {
      'POST /users/': registered,
      'POST /login': login,
      'POST /token/refresh': refreshed,
      'GET /current-user': await ctx.app.inject({ url: '/current-user', headers: bearer(token) }),
      'GET /users/me': await ctx.app.inject({ url: '/users/me', headers: bearer(token) }),
      'GET /users/:id': await ctx.app.inject({ url: `/users/${id}`, headers: bearer(token) }),
      'GET /users/ (admin)': await ctx.app.inject({ url: '/users/', headers: admin.headers }),
      'GET /sessions': await ctx.app.inject({ url: '/sessions', headers: bearer(token) }),
      'PATCH /users/:id': await ctx.app.inject({
        method: 'PATCH',
        url: `/users/${id}`,
        headers: bearer(token),
        payload: { name: `${user.name}x` },
      }),
      'POST /login (401)': await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: 'wrong password 1' },
      }),
    }
    for (const [what, response] of Object.entries(answers)) {
      assert.ok(response.statusCode < 500, `${what}: ${response.statusCode}`)
      assert.equal(response.headers['cache-control'], 'no-store', what)
    }
    const bundle = await ctx.app.inject('/redoc/redoc.standalone.js')
    assert.match(String(bundle.headers['cache-control']), /^public/)
  })
})

// ------------------------------------------------------------------ CORS

describe('CORS', () => {
  const apps: FastifyInstance[] = []
  async function appWith(env: Record<string, string>) {
    const app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:', ...env }), { logger: false })
    apps.push(app)
    return app
  }
  after(async () => {
    for (const app of apps) await app.close()
  })
  const preflight = (origin: string, method = 'POST') => ({
    method: 'OPTIONS' as const,
    url: '/users/',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type',
    },
  })

  test('by default (no CORS_ORIGINS) no CORS header is ever sent, and no preflight succeeds', async () => {
    const app = await appWith({})
    const simple = await app.inject({ url: '/healthz', headers: { origin: 'https://app.example.com' } })
    assert.equal(simple.statusCode, 200)
    const options = await app.inject(preflight('https://app.example.com'))
    assert.notEqual(options.statusCode, 204)
    assert.ok(options.statusCode >= 400)
    for (const response of [simple, options])
      for (const name of Object.keys(response.headers))
        assert.doesNotMatch(name, /^access-control-/, `unexpected ${name}`)
  })

  test('an allowed origin is echoed (never *), varies by Origin, never with credentials; its preflight is answered', async () => {
    const app = await appWith({ CORS_ORIGINS: 'https://app.example.com,http://localhost:5173' })
    const simple = await app.inject({ url: '/healthz', headers: { origin: 'http://localhost:5173' } })
    assert.equal(simple.headers['access-control-allow-origin'], 'http://localhost:5173')
    assert.match(String(simple.headers.vary), /\bOrigin\b/i)
    assert.equal(simple.headers['access-control-allow-credentials'], undefined)
    assert.match(String(simple.headers['access-control-expose-headers']), /X-Request-Id/)

    const options = await app.inject(preflight('https://app.example.com', 'DELETE'))
    assert.equal(options.statusCode, 204)
    assert.equal(options.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.match(String(options.headers['access-control-allow-methods']), /\bDELETE\b/)
    assert.match(String(options.headers['access-control-allow-headers']), /\bAuthorization\b/i)
    assert.match(String(options.headers['access-control-allow-headers']), /\bContent-Type\b/i)
    assert.ok(Number(options.headers['access-control-max-age']) > 0)
    assert.equal(options.headers['access-control-allow-credentials'], undefined)
    assert.match(String(options.headers.vary), /\bOrigin\b/i)

    // The real request after the preflight works too.
    const created = await app.inject({
      method: 'POST',
      url: '/users/',
      headers: { origin: 'https://app.example.com' },
      payload: uniqueUser(),
    })
    assert.equal(created.statusCode, 201)
    assert.equal(created.headers['access-control-allow-origin'], 'https://app.example.com')
  })

  test('a refused origin (or none) gets no CORS header, but the answer still varies by Origin', async () => {
    const app = await appWith({ CORS_ORIGINS: 'https://app.example.com' })
    for (const origin of [
      'https://evil.example.com',
      'https://app.example.com.evil.com',
      'http://app.example.com',
      'null',
    ]) {
      const simple = await app.inject({ url: '/healthz', headers: { origin } })
      const options = await app.inject(preflight(origin))
      assert.notEqual(options.statusCode, 204, origin)
      for (const response of [simple, options]) {
        for (const name of Object.keys(response.headers))
          assert.doesNotMatch(name, /^access-control-/, `${origin}: unexpected ${name}`)
        assert.match(String(response.headers.vary), /\bOrigin\b/i, origin)
      }
    }
    const noOrigin = await app.inject('/healthz')
    assert.equal(noOrigin.headers['access-control-allow-origin'], undefined)
    assert.match(String(noOrigin.headers.vary), /\bOrigin\b/i)
  })

  test('CORS_ORIGINS=* is refused at start', () => {
    assert.throws(
      () => loadConfig({ NODE_ENV: 'test', SECRET_KEY: 'x'.repeat(40), CORS_ORIGINS: '*' }),
      /CORS_ORIGINS/,
    )
  })
})

// ------------------------------------------------------------------ routes and request ids

describe('unknown routes and methods, request ids', () => {
  let app: FastifyInstance
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    await app.ready()
  })
  after(() => app?.close())

  test('an unknown path is a problem+json 404', async () => {
    for (const url of ['/nope', '/users/1/nope', '/product/1/x?secret=1']) {
      const problem = assertProblem(await app.inject(url), 404)
      assert.doesNotMatch(problem.detail, /secret/)
    }
  })

  test('a known path with a method it does not serve is a problem+json 405 naming the allowed methods', async () => {
    const cases: [string, string, string[]][] = [
      ['DELETE', '/login', ['POST']],
      ['GET', '/login', ['POST']],
      ['PUT', '/users/', ['GET', 'HEAD', 'POST']],
      ['PUT', '/users', ['GET', 'HEAD', 'POST']],
      ['POST', '/users/7', ['GET', 'HEAD', 'PATCH', 'DELETE']],
      ['POST', '/product/7', ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']],
      ['DELETE', '/healthz', ['GET', 'HEAD']],
      ['OPTIONS', '/current-user', ['GET', 'HEAD']],
    ]
    for (const [method, url, allowed] of cases) {
      const response = await app.inject({ method: method as 'GET', url })
      assertProblem(response, 405)
      const allow = String(response.headers.allow)
        .split(',')
        .map((m) => m.trim())
      assert.deepEqual(new Set(allow), new Set(allowed), `${method} ${url}: Allow ${allow.join(', ')}`)
    }
    // HEAD of a GET route is served.
    assert.equal((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 200)
  })

  test('a sane incoming X-Request-Id is returned as is; anything else is replaced by a fresh id', async () => {
    for (const id of ['abc-123', 'trace:01HZY.9_x', 'a'.repeat(128)]) {
      const response = await app.inject({ url: '/healthz', headers: { 'x-request-id': id } })
      assert.equal(response.headers['x-request-id'], id)
    }
    const seen = new Set<string>()
    for (const id of ['', 'a'.repeat(129), 'has space', 'quote"d', 'semi;colon', 'ünïcode', '{"level":60}']) {
      const response = await app.inject({ url: '/healthz', headers: { 'x-request-id': id } })
      const returned = String(response.headers['x-request-id'])
      assert.notEqual(returned, id)
      assert.match(returned, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      assert.ok(!seen.has(returned), 'each generated id is new')
      seen.add(returned)
    }
    const errored = await app.inject({ url: '/nope', headers: { 'x-request-id': 'on-errors-too' } })
    assert.equal(errored.headers['x-request-id'], 'on-errors-too')
  })
})
