import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../support/app.js'

// Some requests are answered before any route or hook runs: Node's HTTP parser refuses them, the
// router cannot read their path, or Node answers them itself. Those answers, too, must carry the
// security headers of every other response and be problem+json. Each request here is sent as
// raw bytes, as an attacker (or a broken client) would send it.

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends raw bytes and reads what comes back until the server closes (bounded: a safety net). */
async function exchange(base: string, request: string, timeoutMs = 15_000): Promise<RawResponse> {
  const url = new URL(base)
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {}) // a reset after the answer shows as the end of the exchange
  let text = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk))
  const closed = once(socket, 'close')
  await once(socket, 'connect')
  socket.write(request)
  const timer = setTimeout(() => socket.destroy(), timeoutMs)
  await closed
  clearTimeout(timer)
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1])
  assert.ok(status > 0, `no HTTP answer, received: ${JSON.stringify(text)}`)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const name = line.slice(0, line.indexOf(':')).toLowerCase()
    assert.equal(headers[name], undefined, `${name} is sent once`)
    headers[name] = line.slice(line.indexOf(':') + 1).trim()
  }
  return { status, headers, body: rest.join('\r\n\r\n') }
}

/** Headers of an ordinary answer that are about this answer, not about security. */
const NOT_SECURITY_HEADERS = new Set([
  'content-type',
  'content-length',
  'date',
  'connection',
  'keep-alive',
  'x-request-id',
  'cache-control',
])

/** The security headers of an ordinary answer: what every refusal must carry too. */
async function securityHeadersOfOrdinaryAnswer(base: string): Promise<Record<string, string>> {
  const ordinary = await exchange(base, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(ordinary.status, 200)
  const headers = Object.fromEntries(
    Object.entries(ordinary.headers).filter(([name]) => !NOT_SECURITY_HEADERS.has(name)),
  )
  // What the comparison rests on is really there.
  assert.equal(headers['x-content-type-options'], 'nosniff')
  assert.equal(headers['x-frame-options'], 'DENY')
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/)
  assert.equal(headers['referrer-policy'], 'no-referrer')
  assert.equal(headers['cross-origin-resource-policy'], 'same-origin')
  assert.equal(headers['cross-origin-opener-policy'], 'same-origin')
  return headers
}

function assertProblemWithSecurityHeaders(
  response: RawResponse,
  status: number,
  security: Record<string, string>,
  what: string,
) {
  assert.equal(response.status, status, `${what}: status; body ${response.body}`)
  assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/, `${what}: type`)
  assert.equal(response.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  for (const [name, value] of Object.entries(security))
    assert.equal(response.headers[name], value, `${what}: ${name}`)
  assert.equal(response.headers['cache-control'], 'no-store', `${what}: Cache-Control`)
  const body = JSON.parse(response.body) as Record<string, unknown>
  assert.equal(body.status, status, `${what}: body status`)
  for (const field of ['type', 'title', 'detail'])
    assert.equal(typeof body[field], 'string', `${what}: body ${field}`)
}

const CLOSE = 'Host: x\r\nConnection: close\r\n'

/** Requests refused before any route runs, each with the status it must get. */
const REFUSED: [what: string, request: string, status: number][] = [
  ['an unknown method (Node refuses it)', `FOO / HTTP/1.1\r\n${CLOSE}\r\n`, 400],
  ['a malformed request line', 'GARBAGE\r\n\r\n', 400],
  ['an HTTP/2 preface on HTTP/1.1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
  ['a header line without a colon', `GET /healthz HTTP/1.1\r\n${CLOSE}Bad Header\r\n\r\n`, 400],
  [
    'Content-Length with Transfer-Encoding (a smuggling shape)',
    `POST /users/ HTTP/1.1\r\n${CLOSE}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    'headers larger than the limit',
    `GET /healthz HTTP/1.1\r\n${CLOSE}X-Big: ${'x'.repeat(20_000)}\r\n\r\n`,
    431,
  ],
  ['a URL larger than the limit', `GET /users/?q=${'x'.repeat(20_000)} HTTP/1.1\r\n${CLOSE}\r\n`, 431],
  [
    'an HTTP/1.1 request without Host (Node answers it itself)',
    'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n',
    400,
  ],
  [
    'an expectation other than 100-continue (Node answers it itself)',
    `GET /healthz HTTP/1.1\r\n${CLOSE}Expect: something-else\r\n\r\n`,
    417,
  ],
  [
    'a path that is not valid percent-encoding (the router refuses it)',
    `GET /product/%zz HTTP/1.1\r\n${CLOSE}\r\n`,
    400,
  ],
  [
    'a path parameter longer than the router takes',
    `GET /product/${'1'.repeat(150)} HTTP/1.1\r\n${CLOSE}\r\n`,
    414,
  ],
  ['PROPFIND, a method Node knows and no route takes', `PROPFIND /healthz HTTP/1.1\r\n${CLOSE}\r\n`, 405],
  ['MKCOL on an unknown path', `MKCOL /no/such/path HTTP/1.1\r\n${CLOSE}\r\n`, 404],
]

describe('refusals before routing carry the security headers and are problem+json', () => {
  let app: FastifyInstance
  let base: string
  let security: Record<string, string>
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    security = await securityHeadersOfOrdinaryAnswer(base)
  })
  after(() => app?.close())

  for (const [what, request, status] of REFUSED)
    test(`${what}: ${status}`, async () => {
      assertProblemWithSecurityHeaders(await exchange(base, request), status, security, what)
    })

  test('a request that still works without Host (HTTP/1.0) and with Expect: 100-continue is served', async () => {
    assert.equal((await exchange(base, 'GET /healthz HTTP/1.0\r\n\r\n')).status, 200)
    const continued = await exchange(
      base,
      `POST /users/ HTTP/1.1\r\n${CLOSE}Content-Type: application/json\r\nContent-Length: 2\r\n` +
        'Expect: 100-continue\r\n\r\n{}',
    )
    // The interim 100 Continue, then the answer to the body: the validation error.
    assert.equal(continued.status, 100)
    assert.match(continued.body, /^HTTP\/1\.1 422 /)
  })
})

describe('a request too slow to arrive (408) carries them too', () => {
  let app: FastifyInstance
  let base: string
  let security: Record<string, string>
  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:', REQUEST_TIMEOUT_MS: '500' }), {
      logger: false,
    })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    security = await securityHeadersOfOrdinaryAnswer(base)
  })
  after(() => app?.close())

  test('headers that never end: 408', async () => {
    const response = await exchange(base, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
    assertProblemWithSecurityHeaders(response, 408, security, 'unfinished headers')
  })
})

describe('over https (PUBLIC_URL), refusals carry HSTS like every other answer', () => {
  let app: FastifyInstance
  let base: string
  before(async () => {
    app = await buildApp(
      testConfig({ DATABASE_URL: 'sqlite::memory:', PUBLIC_URL: 'https://api.example.com' }),
      { logger: false },
    )
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(() => app?.close())

  test('an unknown method and a missing Host: the same Strict-Transport-Security', async () => {
    const security = await securityHeadersOfOrdinaryAnswer(base)
    assert.match(security['strict-transport-security'] ?? '', /max-age=\d+/)
    assertProblemWithSecurityHeaders(
      await exchange(base, `FOO / HTTP/1.1\r\n${CLOSE}\r\n`),
      400,
      security,
      'FOO',
    )
    assertProblemWithSecurityHeaders(
      await exchange(base, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n'),
      400,
      security,
      'no Host',
    )
  })
})
