import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { setImmediate as yieldToServer } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  uniqueUser,
} from './support/app.js'

// ------------------------------------------------------------------ helpers

/** A Content-Security-Policy header as a map of directive → values. */
function parseCsp(header: unknown): Map<string, string[]> {
  assert.equal(typeof header, 'string', `a Content-Security-Policy header is set (got ${String(header)})`)
  return new Map(
    String(header)
      .split(';')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((directive) => {
        const [name, ...values] = directive.split(/\s+/)
        return [name!.toLowerCase(), values]
      }),
  )
}

/** The API's policy: nothing may load, nothing may frame the response. */
function assertApiHeaders(response: { headers: Record<string, unknown> }, what: string) {
  const h = response.headers
  const csp = parseCsp(h['content-security-policy'])
  assert.deepEqual(csp.get('default-src'), ["'none'"], `${what}: default-src`)
  assert.deepEqual(csp.get('frame-ancestors'), ["'none'"], `${what}: frame-ancestors`)
  assert.equal(h['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  assert.equal(h['x-frame-options'], 'DENY', `${what}: X-Frame-Options`)
  assert.equal(h['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`)
  assert.equal(h['cross-origin-resource-policy'], 'same-origin', `${what}: CORP`)
  assert.equal(h['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`)
  assert.equal(h['x-powered-by'], undefined, `${what}: no X-Powered-By`)
  assert.equal(h['server'], undefined, `${what}: no Server header`)
  assert.equal(h['strict-transport-security'], undefined, `${what}: no HSTS over http`)
  assert.equal(h['cache-control'], 'no-store', `${what}: Cache-Control`)
  assert.match(String(h['x-request-id']), /^[A-Za-z0-9._:-]{1,128}$/, `${what}: X-Request-Id`)
}

interface RawConnection {
  socket: Socket
  /** Everything the server sent so far. */
  received: () => string
  /** Resolves when the server closed (or reset) the connection. */
  closed: Promise<void>
  isClosed: () => boolean
  /** Waits until what was received matches, or fails after `timeoutMs` (a safety net). */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>
}

/** A plain TCP connection to the server, to send HTTP as slowly or as oddly as an attacker would. */
async function rawConnection(base: string): Promise<RawConnection> {
  const url = new URL(base)
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {}) // a reset by the server shows as `closed`
  await once(socket, 'connect')
  let text = ''
  let isClosed = false
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk))
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true
      resolve()
    }),
  )
  return {
    socket,
    received: () => text,
    closed,
    isClosed: () => isClosed,
    async waitFor(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const match = pattern.exec(text)
        if (match) return match
        if (isClosed || Date.now() > deadline)
          throw new Error(`no ${pattern} within ${timeoutMs} ms (closed: ${isClosed}); received: ${text}`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
  }
}

/** Writes, and waits for the socket to accept more when its buffer is full. */
async function write(socket: Socket, data: string | Buffer) {
  if (socket.destroyed) return
  if (!socket.write(data))
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done).off('close', done)
        resolve()
      }
      socket.on('drain', done).on('close', done)
    })
}

/** Resolves true when `promise` settles within `ms`, false otherwise (never rejects). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The status and problem body of a raw HTTP/1.1 response. */
function parseRawResponse(text: string) {
  const [head, body = ''] = text.split('\r\n\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1])
  const headers = Object.fromEntries(
    head!
      .split('\r\n')
      .slice(1)
      .map((line) => [
        line.slice(0, line.indexOf(':')).toLowerCase(),
        line.slice(line.indexOf(':') + 1).trim(),
      ]),
  )
  return { status, headers, body }
}

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

// ------------------------------------------------------------------ bodies

describeEachEngine('request bodies: size, syntax, media type, prototype pollution', (ctx) => {
  let base: string
  before(async () => {
    base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  })

  test('a body over BODY_LIMIT_BYTES is a 413 problem+json', async () => {
    const limit = ctx.config.bodyLimitBytes
    const user = uniqueUser()
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/users/',
      payload: { ...user, name: 'x'.repeat(limit) },
    })
    const problem = assertProblem(response, 413)
    assert.equal(problem.title, 'Content Too Large')
    // The OAuth2 form has its own, smaller limit.
    const form = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `username=a&password=${'p'.repeat(9 * 1024)}`,
    })
    assertProblem(form, 413)
  })

  test('a declared Content-Length of 50 MB is refused at once, from the headers, before any body is read', async () => {
    const connection = await rawConnection(base)
    try {
      await write(
        connection.socket,
        'POST /users/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${50 * 1024 * 1024}\r\n\r\n{"name":`,
      )
      // Only 8 bytes of the 50 MB were sent: the answer cannot have waited for the body.
      await connection.waitFor(/\r\n\r\n[\s\S]*\}$/)
      const response = parseRawResponse(connection.received())
      assert.equal(response.status, 413)
      assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/)
      assert.equal(JSON.parse(response.body).status, 413)
    } finally {
      connection.socket.destroy()
    }
    // The server is fine afterwards.
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
  })

  test('a chunked body (no Content-Length) is cut off once it passes the limit, not buffered to the end', async () => {
    const connection = await rawConnection(base)
    const chunk = Buffer.alloc(16 * 1024, 'a')
    const willing = 64 * 1024 * 1024
    let sent = 0
    try {
      await write(
        connection.socket,
        'POST /users/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `${(1).toString(16)}\r\n"\r\n`,
      )
      while (sent < willing && !connection.isClosed() && !/\r\n\r\n/.test(connection.received())) {
        await write(connection.socket, `${chunk.length.toString(16)}\r\n`)
        await write(connection.socket, chunk)
        await write(connection.socket, '\r\n')
        sent += chunk.length
        await yieldToServer()
      }
      await connection.waitFor(/\r\n\r\n[\s\S]*\}$/)
      const response = parseRawResponse(connection.received())
      assert.equal(response.status, 413)
      assert.equal(JSON.parse(response.body).status, 413)
      // The answer came long before the 64 MB we were willing to send: what was sent beyond the
      // limit sat in socket buffers, never in the server's memory as one body.
      assert.ok(sent < willing / 4, `the server read ${sent} bytes before refusing`)
    } finally {
      connection.socket.destroy()
    }
  })

  test('malformed JSON is a 400 problem+json that does not echo the body', async () => {
    for (const payload of ['{"name": "a", "password": "hunter2-in-the-body"', '{bad}', '[1,]', '"\\u00"']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        headers: { 'content-type': 'application/json' },
        payload,
      })
      const problem = assertProblem(response, 400)
      assert.doesNotMatch(response.body, /hunter2/)
      assert.doesNotMatch(problem.detail, /bad|\[1/)
    }
  })

  test('a body in a media type the route does not take is 415', async () => {
    for (const type of [
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
    ]) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        headers: { 'content-type': type },
        payload: 'name=a',
      })
      assertProblem(response, 415)
    }
  })

  test('prototype-pollution payloads are refused (400 or 422 problem+json, never 500) and pollute nothing', async () => {
    const owner = await registerAndLogin(ctx.app)
    const user = uniqueUser()
    const usersBefore = (await ctx.app.db.selectFrom('users').select('id').execute()).length
    const json = (body: string) => ({
      method: 'POST' as const,
      url: '/users/',
      headers: { 'content-type': 'application/json' },
      payload: body,
    })
    const fields = `"name":"${user.name}","email":"${user.email}","password":"${user.password}"`
    const attempts: [string, InjectOptions, number][] = [
      ['__proto__ at the top', json(`{${fields},"__proto__":{"isAdmin":true,"role":"admin"}}`), 400],
      ['__proto__ alone', json('{"__proto__":{"isAdmin":true}}'), 400],
      ['constructor.prototype', json(`{${fields},"constructor":{"prototype":{"isAdmin":true}}}`), 400],
      ['constructor without prototype', json(`{${fields},"constructor":{"name":"x"}}`), 422],
      ['escaped __proto__ key', json(`{${fields},"\\u005f_proto__":{"isAdmin":true}}`), 400],
      [
        'a nested __proto__',
        {
          method: 'PATCH',
          url: `/users/${owner.id}`,
          headers: { ...owner.headers, 'content-type': 'application/json' },
          payload: '{"name":"x","meta":{"__proto__":{"isAdmin":true}}}',
        },
        400,
      ],
      [
        '__proto__ on a product',
        {
          method: 'POST',
          url: '/product/',
          headers: { ...owner.headers, 'content-type': 'application/json' },
          payload: '{"product_id":"P-1","name":"n","price":1,"__proto__":{"isAdmin":true}}',
        },
        400,
      ],
      [
        '__proto__ in the login form',
        {
          method: 'POST',
          url: '/login',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: `username=${encodeURIComponent(user.email)}&password=x&__proto__[isAdmin]=true&__proto__=1`,
        },
        422,
      ],
      [
        'constructor in the login form',
        {
          method: 'POST',
          url: '/login',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'username=a&password=b&constructor[prototype][isAdmin]=true',
        },
        422,
      ],
    ]
    for (const [what, request, status] of attempts) {
      const response = await ctx.app.inject(request)
      const problem = assertProblem(response, status)
      if (status === 422)
        assert.ok(
          problem.errors?.some((issue) => /__proto__|constructor/.test(issue.field)),
          `${what}: the unknown field is named: ${JSON.stringify(problem.errors)}`,
        )
    }
    assert.equal(({} as { isAdmin?: unknown }).isAdmin, undefined)
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'isAdmin'), false)
    assert.equal((await ctx.app.db.selectFrom('users').select('id').execute()).length, usersBefore)
    const me = await ctx.app.inject({ url: '/users/me', headers: owner.headers })
    assert.equal(me.json<{ role: string; name: string }>().role, 'user')
    assert.equal(me.json<{ name: string }>().name, owner.name)
    // The same user registers normally with a clean body.
    await register(ctx.app, user)
  })
})

// ------------------------------------------------------------------ timeouts

describe('timeouts: slow clients cannot hold the server', () => {
  const REQUEST_TIMEOUT_MS = 500
  let app: FastifyInstance
  let base: string
  before(async () => {
    app = await buildApp(
      testConfig({ DATABASE_URL: 'sqlite::memory:', REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) }),
      { logger: false },
    )
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => app?.close())

  test('by default every timeout is finite', async () => {
    const defaults = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    try {
      const server = defaults.server
      assert.equal(server.requestTimeout, 30_000)
      assert.equal(server.headersTimeout, 10_000)
      assert.equal(server.keepAliveTimeout, 72_000)
      assert.equal(server.timeout, 60_000)
    } finally {
      await defaults.close()
    }
  })

  test('headers sent one line at a time (slowloris) are cut off within the request timeout', async () => {
    const connection = await rawConnection(base)
    await write(connection.socket, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
    // Keep sending a header line every 100 ms, for up to 20 s: only the server can end this.
    const dripping = (async () => {
      for (let i = 0; i < 200 && !connection.isClosed(); i++) {
        await write(connection.socket, `X-Slow-${i}: ${'z'.repeat(10)}\r\n`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    // Meanwhile other clients are served.
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
    assert.ok(await within(connection.closed, 10_000), 'the slow connection was closed by the server')
    await dripping
    assert.match(connection.received(), /^(HTTP\/1\.1 408|$)/)
  })

  test('a body sent one byte at a time is cut off too', async () => {
    const connection = await rawConnection(base)
    await write(
      connection.socket,
      'POST /users/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
    )
    const dripping = (async () => {
      for (let i = 0; i < 200 && !connection.isClosed(); i++) {
        await write(connection.socket, ' ')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()
    assert.ok(await within(connection.closed, 10_000), 'the slow connection was closed by the server')
    await dripping
    assert.doesNotMatch(connection.received(), /^HTTP\/1\.1 (2|5)\d\d/)
  })

  test('a connection that never sends anything is closed', async () => {
    const connection = await rawConnection(base)
    assert.ok(await within(connection.closed, 10_000), 'the idle connection was closed by the server')
  })
})

describe('requests the HTTP parser refuses', () => {
  let app: FastifyInstance
  let base: string
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => app?.close())

  test('headers (or a URL) too large, or a malformed request line, are problem+json too', async () => {
    for (const [request, status] of [
      [`GET /users/?q=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
      ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400],
    ] as const) {
      const connection = await rawConnection(base)
      await write(connection.socket, request)
      assert.ok(await within(connection.closed, 10_000), 'the connection was closed by the server')
      const response = parseRawResponse(connection.received())
      assert.equal(response.status, status)
      assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/)
      assert.equal(JSON.parse(response.body).status, status)
    }
  })
})
