import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { until } from './processes.js'
import { startTcpProxy, targetOf, type TcpProxy } from './tcp-proxy.js'

/** How long a test watches for bytes that must not arrive: absence is all it asserts. */
const QUIET_MS = 300

/**
 * An echo server that greets each connection with "hello\n" (as a database greets its clients),
 * echoes what it receives, ends its side when the client ends its own, and remembers its sockets.
 */
async function startEchoServer() {
  const sockets = new Set<Socket>()
  const counts = { accepted: 0 }
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    counts.accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.write('hello\n')
    // "bye" makes the server end its side first, as a database does on a client's quit command.
    socket.on('data', (chunk: Buffer) => {
      if (chunk.toString() === 'bye\n') socket.end('bye\n')
      else socket.write(chunk)
    })
    socket.on('end', () => socket.end())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, sockets, counts, port: (server.address() as AddressInfo).port }
}

/** A client connection that collects what it receives and how it ended. */
async function client(port: number) {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  const state = {
    received: '',
    ended: false,
    closed: false,
    error: undefined as NodeJS.ErrnoException | undefined,
  }
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (state.received += chunk))
  socket.on('end', () => (state.ended = true))
  socket.on('error', (error: NodeJS.ErrnoException) => (state.error = error))
  socket.on('close', () => (state.closed = true))
  await once(socket, 'connect')
  // A bounded wait: a proxy that fails to close a connection fails the test instead of hanging it.
  const closed = () => until(() => state.closed, 'the connection to close')
  return { socket, state, closed }
}

const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS))

describe('test support: the TCP proxy', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>
  const proxies: TcpProxy[] = []
  const sockets: Socket[] = []
  before(async () => {
    echo = await startEchoServer()
  })
  after(async () => {
    for (const socket of sockets) socket.destroy()
    await Promise.all(proxies.map((proxy) => proxy.close()))
    echo.server.close()
  })
  async function proxy() {
    const started = await startTcpProxy({ host: '127.0.0.1', port: echo.port })
    proxies.push(started)
    return started
  }
  async function open(port: number) {
    const opened = await client(port)
    sockets.push(opened.socket)
    return opened
  }

  test('forwards both ways, half-closes included', async () => {
    const link = await proxy()
    const { socket, state, closed } = await open(link.port)
    await until(() => state.received === 'hello\n', 'the greeting')
    socket.write('ping\n')
    await until(() => state.received === 'hello\nping\n', 'the echo')
    assert.equal(link.connections, 1)
    // The client ends its side; the echo server sees it, ends its own, and the client sees that.
    socket.end()
    await closed()
    assert.equal(state.ended, true)
    assert.equal(state.error, undefined)
    await until(() => link.connections === 0 && echo.sockets.size === 0, 'both connections gone')
  })

  test('carries more than the socket buffers hold, in order (flow control)', async () => {
    const link = await proxy()
    const { socket, state } = await open(link.port)
    const payload = Array.from({ length: 200_000 }, (_, index) => `${index}\n`).join('')
    socket.write(payload)
    await until(() => state.received.length >= 'hello\n'.length + payload.length, 'the whole echo')
    assert.equal(state.received, `hello\n${payload}`)
  })

  test('pause freezes open and new connections both ways without closing them; resume delivers what was held', async () => {
    const link = await proxy()
    const early = await open(link.port)
    await until(() => early.state.received === 'hello\n', 'the greeting')

    link.pause()
    early.socket.write('held\n')
    const acceptedBefore = echo.counts.accepted
    const late = await open(link.port)
    await until(
      () => echo.counts.accepted > acceptedBefore,
      'the proxy connected the new client to the target',
    )
    await quiet()
    assert.equal(early.state.received, 'hello\n', 'nothing comes back while paused')
    assert.equal(late.state.received, '', "the target's greeting is held too")
    // A side that ends meanwhile is not told to the other side either.
    late.socket.end()
    await quiet()
    assert.equal(late.state.ended, false)
    assert.equal(early.socket.destroyed || late.socket.destroyed, false, 'the sockets stay open')

    link.resume()
    await until(() => early.state.received === 'hello\nheld\n', 'the held bytes, after resume')
    await late.closed()
    assert.equal(late.state.received, 'hello\n', 'the greeting, then the end, in order')
    assert.equal(late.state.ended, true)
  })

  test('cut resets every open connection at both ends, and later connections are forwarded again', async () => {
    const link = await proxy()
    const before = new Set(echo.sockets)
    const first = await open(link.port)
    await until(() => first.state.received === 'hello\n', 'the greeting')
    const targetSides = [...echo.sockets].filter((socket) => !before.has(socket))
    assert.equal(targetSides.length, 1)
    link.cut()
    await first.closed()
    assert.equal(first.state.error?.code, 'ECONNRESET')
    await until(() => targetSides.every((socket) => socket.destroyed), 'the target sees its side closed')
    await until(() => link.connections === 0, 'the proxy forgets both')

    const second = await open(link.port)
    await until(() => second.state.received === 'hello\n', 'a new connection is forwarded')
  })

  test('a cut after the target ended its side (a quit) still closes the connection at both ends', async () => {
    const link = await proxy()
    const before = new Set(echo.sockets)
    const { socket, state } = await open(link.port)
    socket.write('bye\n')
    await until(() => state.ended, "the target's end, passed on")
    const [targetSide] = [...echo.sockets].filter((each) => !before.has(each))
    assert.ok(targetSide, 'the target has the connection')
    link.cut()
    await until(() => link.connections === 0, 'the proxy forgets both')
    await until(() => targetSide.destroyed, 'the target sees its side closed')
  })

  test('a cut while paused resets the frozen connections too', async () => {
    const link = await proxy()
    const frozen = await open(link.port)
    await until(() => frozen.state.received === 'hello\n', 'the greeting')
    link.pause()
    link.cut()
    await frozen.closed()
    assert.equal(frozen.state.error?.code, 'ECONNRESET')
    link.resume()
  })

  test('refuseNew refuses new connections and keeps the open ones; acceptNew takes them again on the same port', async () => {
    const link = await proxy()
    const open1 = await open(link.port)
    await link.refuseNew()
    const refused = await new Promise<string | undefined>((resolve) => {
      const socket = connect(link.port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(undefined)
      })
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code))
    })
    assert.equal(refused, 'ECONNREFUSED')
    open1.socket.write('still\n')
    await until(() => open1.state.received === 'hello\nstill\n', 'the open connection still works')

    await link.acceptNew()
    const again = await open(link.port)
    await until(() => again.state.received === 'hello\n', 'a new connection after acceptNew')
  })

  test('close resets what is open, half-closed links included, stops listening, and resolves once everything is gone', async () => {
    const link = await proxy()
    const plain = await open(link.port)
    const quit = await open(link.port)
    await until(() => quit.state.received === 'hello\n', 'the greeting')
    quit.socket.write('bye\n')
    await until(() => quit.state.ended, "the target's end, passed on")
    link.pause()
    let closed = false
    void link.close().then(() => (closed = true))
    await until(() => closed, 'close() to resolve')
    assert.equal(link.connections, 0)
    await plain.closed()
    await assert.rejects(
      () => client(link.port),
      (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
    )
  })

  test('rewrite points a URL at the proxy and keeps the rest; targetOf reads a URL, default ports included', async () => {
    const link = await proxy()
    assert.equal(
      link.rewrite('postgres://postgres:pw@db.example:5432/test?sslmode=disable'),
      `postgres://postgres:pw@127.0.0.1:${link.port}/test?sslmode=disable`,
    )
    assert.deepEqual(targetOf('redis://127.0.0.1:6379'), { host: '127.0.0.1', port: 6379 })
    assert.deepEqual(targetOf('mysql://root@localhost/test'), { host: 'localhost', port: 3306 })
    assert.deepEqual(targetOf('postgres://[::1]/x'), { host: '::1', port: 5432 })
  })
})
