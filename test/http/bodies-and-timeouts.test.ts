/** Request bodies (size, syntax, media type, prototype pollution), slow clients, and requests the HTTP parser refuses. */
import assert from 'node:assert/strict'
import { setImmediate as yieldToServer } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildApp } from '../../src/app.js'
import {
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  uniqueUser,
} from '../support/app.js'
import { rawConnection, write, within, parseRawResponse } from './support.js'

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
      const problem = assertProblem(response, 415)
      // It says what to send instead.
      assert.equal(problem.detail, 'This route takes application/json: send the body with that Content-Type.')
    }
    const login = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'text/plain' },
      payload: 'username=a&password=b',
    })
    assert.equal(
      assertProblem(login, 415).detail,
      'This route takes application/x-www-form-urlencoded or application/json: send the body with one of them as its Content-Type.',
    )
  })

  test('JSON sent as a form (curl -d without -H) is refused without repeating it, and says to send JSON', async () => {
    const secret = 'hunter2-in-the-body'
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: JSON.stringify({ username: 'someone@example.com', password: secret }),
    })
    const problem = assertProblem(response, 422)
    assert.doesNotMatch(response.body, /hunter2|someone/)
    assert.deepEqual(
      problem.errors?.find((issue) => issue.field === ''),
      {
        in: 'body',
        field: '',
        message: 'is JSON sent as a form: send it with Content-Type: application/json',
      },
    )
    // Any other name that is no field name is not repeated either.
    const odd = await ctx.app.inject({
      method: 'POST',
      url: '/users/',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ...uniqueUser(), 'password: hunter2-in-the-body': 1 }),
    })
    assert.doesNotMatch(odd.body, /hunter2/)
    assert.deepEqual(
      assertProblem(odd, 422).errors?.find((issue) => issue.field === ''),
      {
        in: 'body',
        field: '',
        message: 'has a field that is not allowed (its name is not repeated: it is no field name)',
      },
    )
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
