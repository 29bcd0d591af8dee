import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { uniqueUser } from '../support/app.js'
import { connectionRefused, until } from '../support/processes.js'
import { startServerProcess, type ServerProcess } from '../support/server-process.js'

/**
 * Graceful shutdown of the real process: on SIGTERM /readyz fails for the drain period,
 * requests in flight finish, idle and half-open connections are closed, and the process exits 0
 * within its deadline. Every wait is bounded; none of these tests depends on the machine's speed.
 */

interface Response {
  status: number
  headers: Record<string, string>
  body: string
}

/** The complete HTTP/1.1 responses in `text` (each with a Content-Length, as ours all have). */
function parseResponses(text: string): Response[] {
  const responses: Response[] = []
  let rest = text
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) return responses
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(':')
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]
      }),
    )
    const length = Number(headers['content-length'] ?? 0)
    if (rest.length < end + 4 + length) return responses
    responses.push({
      status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]),
      headers,
      body: rest.slice(end + 4, end + 4 + length),
    })
    rest = rest.slice(end + 4 + length)
  }
}

/** A raw TCP connection to the server: what it receives, and whether the server closed it. */
interface RawConnection {
  socket: Socket
  received: () => string
  responses: () => Response[]
  isClosed: () => boolean
  closed: Promise<void>
}

const connections: Socket[] = []
async function openConnection(port: number): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1')
  connections.push(socket)
  let received = ''
  let isClosed = false
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      isClosed = true
      resolve()
    }),
  )
  await once(socket, 'connect')
  return {
    socket,
    received: () => received,
    responses: () => parseResponses(received),
    isClosed: () => isClosed,
    closed,
  }
}

const registration = (user: object, requestId: string) => {
  const body = JSON.stringify(user)
  return {
    head:
      'POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `X-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    body,
  }
}

/**
 * A registration whose body has only half arrived: in flight until the test sends the rest.
 * Resolves once the server has logged it as started.
 */
async function startSlowRegistration(server: ServerProcess, user: object, requestId: string) {
  const connection = await openConnection(server.port)
  const { head, body } = registration(user, requestId)
  const half = Math.floor(body.length / 2)
  connection.socket.write(head + body.slice(0, half))
  await server.waitForLog(`request ${requestId} to be in flight`, (line) => {
    return line.reqId === requestId && line.msg === 'incoming request'
  })
  return { connection, rest: body.slice(half) }
}

const usersIn = (databaseFile: string, emails: string[]) => {
  const db = new Database(databaseFile, { readonly: true })
  try {
    return db
      .prepare(`select email from users where email in (${emails.map(() => '?').join(', ')})`)
      .all(...emails)
      .map((row) => (row as { email: string }).email)
  } finally {
    db.close()
  }
}

describe('shutdown: SIGTERM', () => {
  const servers: ServerProcess[] = []
  after(async () => {
    for (const socket of connections) socket.destroy()
    await Promise.all(servers.map((server) => server.cleanUp()))
  })
  async function start(env: Record<string, string>) {
    // At debug, the server logs each request as it starts: how a test knows one is in flight.
    const server = await startServerProcess({ LOG_LEVEL: 'debug', ...env })
    servers.push(server)
    return server
  }

  test('closes at once the connections with no request in flight (silent, half-sent headers, idle keep-alive), finishes the one in flight, and exits 0', async () => {
    // A deadline far beyond the test's own waits: reaching it would be an exit 1.
    const server = await start({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '300000' })
    const silent = await openConnection(server.port)
    const halfHeaders = await openConnection(server.port)
    halfHeaders.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half-Sent')
    const keptAlive = await openConnection(server.port)
    keptAlive.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(() => keptAlive.responses().length === 1, 'the keep-alive answer')
    assert.equal(keptAlive.responses()[0]!.headers.connection, 'keep-alive')
    const user = uniqueUser()
    const inFlight = await startSlowRegistration(server, user, 'in-flight-a')

    server.child.kill('SIGTERM')
    const idle = { silent, halfHeaders, keptAlive }
    await until(
      () => Object.values(idle).every((connection) => connection.isClosed()),
      'the server to close the silent, half-sent and idle keep-alive connections',
    )
    // The process is still there (the request in flight holds it): the server closed them.
    assert.equal(server.exit, undefined, `the process is still running; stderr: ${server.output.stderr}`)
    assert.equal(silent.received(), '', 'nothing is sent on a connection that sent nothing')
    assert.equal(halfHeaders.received(), '')
    assert.equal(keptAlive.responses().length, 1)
    await until(() => connectionRefused(server.port), 'new connections to be refused')

    inFlight.connection.socket.write(inFlight.rest)
    await inFlight.connection.closed
    const [answer, ...more] = inFlight.connection.responses()
    assert.equal(answer?.status, 201, `the request in flight is answered: ${inFlight.connection.received()}`)
    assert.equal((JSON.parse(answer.body) as { email: string }).email, user.email)
    assert.equal(answer.headers.connection, 'close')
    assert.equal(more.length, 0)

    assert.deepEqual(await server.waitForExit(), { code: 0, signal: null }, server.output.stderr)
    assert.equal(server.output.stderr, '')
    assert.deepEqual(usersIn(server.databaseFile, [user.email]), [user.email])
  })

  test('during the drain /readyz answers 503 problem+json with Retry-After, while everything else, new connections included, is served', async () => {
    // A drain longer than the test: it ends the process with a second signal.
    const server = await start({ SHUTDOWN_DRAIN_MS: '300000' })
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200)

    server.child.kill('SIGTERM')
    await server.waitForLog('the drain to begin', (line) =>
      /^shutting down: \/readyz fails/.test(String(line.msg)),
    )

    const ready = await fetch(`${server.url}/readyz`)
    assert.equal(ready.status, 503)
    assert.match(ready.headers.get('content-type') ?? '', /^application\/problem\+json/)
    assert.ok(Number(ready.headers.get('retry-after')) > 0, 'Retry-After')
    const problem = (await ready.json()) as { status: number; detail: string }
    assert.equal(problem.status, 503)
    assert.match(problem.detail, /shutting down/)

    assert.equal((await fetch(`${server.url}/healthz`)).status, 200)
    const user = uniqueUser()
    const registered = await fetch(`${server.url}/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(user),
    })
    assert.equal(registered.status, 201)
    // Each answer ends its connection: the client's next request comes on a new one.
    assert.equal(registered.headers.get('connection'), 'close')

    const fresh = await openConnection(server.port)
    fresh.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(() => fresh.responses().length === 1, 'an answer on a connection opened during the drain')
    assert.equal(fresh.responses()[0]!.status, 200)

    // A second signal does not wait for the drain.
    server.child.kill('SIGTERM')
    assert.deepEqual(await server.waitForExit(), { code: null, signal: 'SIGTERM' })
  })

  test('a request pipelined behind the one in flight after listening stopped is refused by our own 503, not run', async () => {
    const server = await start({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '300000' })
    const first = uniqueUser()
    const late = uniqueUser()
    const inFlight = await startSlowRegistration(server, first, 'in-flight-c')

    server.child.kill('SIGTERM')
    await until(() => connectionRefused(server.port), 'listening to stop')
    const lateRequest = registration(late, 'late-c')
    inFlight.connection.socket.write(inFlight.rest + lateRequest.head + lateRequest.body)
    await inFlight.connection.closed

    // HTTP/1.1: the answer that says "Connection: close" is the last one on its connection; the
    // client sends what came after it again, on a new connection (to another instance).
    const responses = inFlight.connection.responses()
    assert.deepEqual(
      responses.map(({ status, headers }) => [status, headers.connection]),
      [[201, 'close']],
    )
    assert.deepEqual(await server.waitForExit(), { code: 0, signal: null }, server.output.stderr)
    // The late registration was not run: nothing of it is in the database …
    assert.deepEqual(usersIn(server.databaseFile, [first.email, late.email]), [first.email])
    // … because our own code refused it (Fastify's refusal, return503OnClosing, is plain JSON).
    const refusal = server
      .logLines()
      .find((line) => line.reqId === 'late-c' && line.msg === 'request rejected')
    assert.equal(refusal?.status, 503, JSON.stringify(server.logLines().filter((l) => l.reqId === 'late-c')))
    assert.match(String(refusal?.detail), /shutting down/)
  })

  test('past SHUTDOWN_TIMEOUT_MS the requests still in flight are cut off, and the process exits 1 with one line saying how many', async () => {
    const server = await start({ SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '1000' })
    // Its body never completes: it is in flight whenever the deadline comes.
    const stuck = await startSlowRegistration(server, uniqueUser(), 'stuck-d')

    server.child.kill('SIGTERM')
    assert.deepEqual(await server.waitForExit(), { code: 1, signal: null })
    await stuck.connection.closed
    assert.equal(stuck.connection.received(), '', 'no answer: it was cut off')
    assert.equal(
      server.output.stderr,
      'error: shutdown did not finish within 1 s (SHUTDOWN_TIMEOUT_MS): 1 request was still in flight and cut off\n',
    )
  })
})
