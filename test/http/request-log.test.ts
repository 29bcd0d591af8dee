import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../support/app.js'

/**
 * The request log: one line per request, written when it ends, with every field Fastify's two
 * lines carried (the request, the status, the time taken), "incoming request" at debug only, and
 * a line for a request whose client went away before its answer.
 */

type Line = Record<string, unknown>

async function appLoggingAt(level: string) {
  const lines: Line[] = []
  const app = await buildApp(testConfig(), {
    logger: { level, stream: { write: (chunk: string) => lines.push(JSON.parse(chunk) as Line) } },
  })
  return { app, lines, of: (reqId: string) => lines.filter((line) => line.reqId === reqId) }
}

async function waitFor<T>(what: string, find: () => T | undefined): Promise<T> {
  for (let tries = 0; tries < 250; tries++) {
    const found = find()
    if (found !== undefined) return found
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`gave up waiting for ${what}`)
}

describe('request log at info: one line per request', () => {
  let app: FastifyInstance
  let of: (reqId: string) => Line[]
  let lines: Line[]

  before(async () => {
    ;({ app, of, lines } = await appLoggingAt('info'))
    await app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => app?.close())

  test('a request is one "request completed" line: request, status and time taken', async () => {
    const port = (app.server.address() as { port: number }).port
    const answer = await fetch(`http://127.0.0.1:${port}/product/7?token=secret-value&page=2`, {
      headers: { 'x-request-id': 'one-line-1' },
    })
    assert.equal(answer.status, 401)
    await answer.arrayBuffer()
    // (A refusal also has its own line, "request rejected", with its detail and no `req`.)
    const withRequest = () => of('one-line-1').filter((line) => line.req !== undefined)
    const logged = await waitFor('the line of one-line-1', () =>
      withRequest().length > 0 ? withRequest() : undefined,
    )
    assert.equal(logged.length, 1, JSON.stringify(logged))
    const [line] = logged as [Line]
    assert.equal(line.msg, 'request completed')
    assert.equal(line.level, 30)
    assert.deepEqual(line.req, {
      method: 'GET',
      url: '/product/7?token=[Redacted]&page=2',
      host: `127.0.0.1:${port}`,
      remoteAddress: '127.0.0.1',
      remotePort: (line.req as { remotePort: number }).remotePort,
    })
    assert.equal(typeof (line.req as { remotePort: unknown }).remotePort, 'number')
    assert.deepEqual(line.res, { statusCode: 401 })
    assert.equal(typeof line.responseTime, 'number')
    assert.ok((line.responseTime as number) >= 0)
  })

  test('an answered request has no other line; nothing says "incoming request" at info', async () => {
    const answer = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'one-line-2' } })
    assert.equal(answer.statusCode, 200)
    assert.deepEqual(
      of('one-line-2').map((line) => line.msg),
      ['request completed'],
    )
    assert.equal(
      lines.some((line) => line.msg === 'incoming request'),
      false,
    )
  })

  test('a request whose client goes away before its answer is logged as aborted', async () => {
    const port = (app.server.address() as { port: number }).port
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    // Half a body: the request is routed, then waits for the rest, which never comes.
    socket.write(
      'POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'X-Request-Id: gone-1\r\nContent-Length: 100\r\n\r\n{"email":',
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.destroy()
    const aborted = await waitFor('the aborted request', () =>
      of('gone-1').find((line) => line.msg === 'request aborted'),
    )
    assert.deepEqual((aborted.req as { method: string; url: string }).method, 'POST')
    assert.equal((aborted.req as { url: string }).url, '/users/')
    assert.equal(aborted.level, 30)
  })
})

describe('request log at debug: the start of each request too', () => {
  let app: FastifyInstance
  let of: (reqId: string) => Line[]

  before(async () => {
    ;({ app, of } = await appLoggingAt('debug'))
  })
  after(() => app?.close())

  test('"incoming request" with the request, then "request completed"', async () => {
    await app.inject({ url: '/healthz', headers: { 'x-request-id': 'debug-1' } })
    const logged = of('debug-1').filter((line) => line.req !== undefined)
    assert.deepEqual(
      logged.map((line) => [line.msg, line.level]),
      [
        ['incoming request', 20],
        ['request completed', 30],
      ],
    )
    assert.deepEqual(logged[0]!.req, logged[1]!.req)
  })
})
