/**
 * A TCP proxy for fault tests. It forwards every connection it accepts to a target (PostgreSQL,
 * MariaDB, Redis, any TCP server) and lets the test break the link for real, under the very
 * client library the application uses:
 *
 * - `pause()` freezes every link, open and new, in both directions, and keeps the sockets open:
 *   what a hung server or a silently dropped route looks like to a client. Bytes sent meanwhile
 *   are held, not lost, and arrive in order after `resume()`, as TCP would deliver them once the
 *   route is back. A side that closes meanwhile is not told to the other side until `resume()`.
 * - `cut()` resets every open connection (an RST each way, as a crashed peer or a middlebox that
 *   forgot the connection gives); later connections are forwarded again.
 * - `refuseNew()` stops listening, so a new connection is refused (ECONNREFUSED, as from a stopped
 *   server) while open ones keep working; `acceptNew()` listens on the same port again.
 * - `close()` refuses new connections, resets the open ones and waits until all are gone.
 *
 * Limits: a client's TCP connect to the proxy succeeds even while it is paused (only the bytes
 * are held), where a real dropped route would leave the connect itself hanging; a client that
 * bounds its connect by the handshake it expects from the server (every database driver) sees
 * the same timeout either way. The proxy connects to the target only when a client connects to
 * it, so a target that is down shows as a connection that opens and then closes.
 *
 *   const proxy = await startTcpProxy('redis://127.0.0.1:6379')
 *   const app = await buildApp(testConfig({ REDIS_URL: proxy.rewrite('redis://127.0.0.1:6379') }))
 *   proxy.pause()   // every Redis call now hangs
 *   after(() => proxy.close())
 */
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

export interface TcpTarget {
  host: string
  port: number
}

export interface TcpProxy {
  /** Where clients connect: always 127.0.0.1. */
  readonly host: string
  readonly port: number
  /** The client connections open now (each has its own connection to the target). */
  readonly connections: number
  /** `url` with its host and port replaced by the proxy's (user, password, path and query kept). */
  rewrite(url: string): string
  pause(): void
  resume(): void
  cut(): void
  refuseNew(): Promise<void>
  acceptNew(): Promise<void>
  close(): Promise<void>
}

/** The port a URL means when it names none. */
const DEFAULT_PORTS: Record<string, number> = {
  'postgres:': 5432,
  'postgresql:': 5432,
  'mysql:': 3306,
  'mariadb:': 3306,
  'redis:': 6379,
  'rediss:': 6379,
  'http:': 80,
}

/** The host and port of a `postgres://`, `mysql://`, `redis://` … URL. */
export function targetOf(url: string): TcpTarget {
  const parsed = new URL(url)
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol]
  if (!port) throw new Error(`${url} names no port and ${parsed.protocol} has no known default`)
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port }
}

/** One forwarded direction: bytes from `from` are written to `to`, holding `from` while `to` is full. */
function relay(from: Socket, to: Socket, isPaused: () => boolean) {
  let waitingForDrain = false
  // Paused before the first 'data' listener, which would otherwise set the socket flowing.
  from.pause()
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      waitingForDrain = true
      from.pause()
    }
  })
  to.on('drain', () => {
    waitingForDrain = false
    if (!isPaused()) from.resume()
  })
  // Half-closes pass through: a client that ends its side still gets the rest of the answer.
  from.on('end', () => to.end())
  return {
    hold: () => from.pause(),
    release: () => {
      if (!waitingForDrain) from.resume()
    },
  }
}

interface Link {
  client: Socket
  upstream: Socket
  hold(): void
  release(): void
  /** A close seen while paused, passed on at resume. */
  pendingClose?: () => void
}

/** Starts a proxy on 127.0.0.1 (a free port unless `port` is given) forwarding to `target`. */
export async function startTcpProxy(target: TcpTarget | string, port = 0): Promise<TcpProxy> {
  const destination = typeof target === 'string' ? targetOf(target) : target
  const links = new Set<Link>()
  let paused = false
  let server: Server | undefined
  let closed = false

  // An RST where the socket can send one. Not on a socket still connecting, nor on one whose side
  // was ended (a FIN sent or queued): Node cannot reset those, and its resetAndDestroy() then
  // neither closes the socket nor says so but through an 'error'.
  const reset = (socket: Socket) =>
    socket.connecting || socket.writableEnded ? socket.destroy() : socket.resetAndDestroy()

  function accept(client: Socket) {
    const upstream = connect({ host: destination.host, port: destination.port, allowHalfOpen: true })
    // Errors end in 'close', handled below; unhandled they would crash the test process.
    client.on('error', () => {})
    upstream.on('error', () => {})
    const isPaused = () => paused
    const up = relay(client, upstream, isPaused)
    const down = relay(upstream, client, isPaused)
    const link: Link = {
      client,
      upstream,
      hold: () => {
        up.hold()
        down.hold()
      },
      release: () => {
        up.release()
        down.release()
      },
    }
    links.add(link)
    const passOnClose = (other: Socket, hadError: boolean) => {
      const close = () => (hadError ? reset(other) : other.destroy())
      if (paused) link.pendingClose = close
      else close()
    }
    client.on('close', (hadError) => passOnClose(upstream, hadError))
    upstream.on('close', (hadError) => passOnClose(client, hadError))
    let open = 2
    const forget = () => {
      if (--open === 0) links.delete(link)
    }
    client.on('close', forget)
    upstream.on('close', forget)
    if (!paused) link.release()
  }

  async function listen(onPort: number) {
    // pauseOnConnect: nothing is read from a client before its relay is in place.
    const next = createServer({ allowHalfOpen: true, pauseOnConnect: true }, accept)
    next.listen(onPort, '127.0.0.1')
    await once(next, 'listening')
    server = next
    return (next.address() as AddressInfo).port
  }

  const boundPort = await listen(port)

  return {
    host: '127.0.0.1',
    port: boundPort,
    get connections() {
      return links.size
    },
    rewrite(url: string) {
      const parsed = new URL(url)
      parsed.hostname = '127.0.0.1'
      parsed.port = String(boundPort)
      return parsed.toString()
    },
    pause() {
      paused = true
      for (const link of links) link.hold()
    },
    resume() {
      paused = false
      for (const link of links) {
        link.release()
        const close = link.pendingClose
        link.pendingClose = undefined
        close?.()
      }
    },
    cut() {
      for (const { client, upstream } of links) {
        reset(client)
        reset(upstream)
      }
    },
    async refuseNew() {
      // close() stops accepting at once; its callback would wait for the open connections.
      server?.close()
      server = undefined
    },
    async acceptNew() {
      if (closed) throw new Error('the proxy is closed')
      if (!server) await listen(boundPort)
    },
    async close() {
      closed = true
      server?.close()
      server = undefined
      const gone = [...links].flatMap(({ client, upstream }) =>
        [client, upstream]
          .filter((socket) => !socket.closed)
          .map((socket) => new Promise((resolve) => socket.once('close', resolve))),
      )
      for (const { client, upstream } of links) {
        reset(client)
        reset(upstream)
      }
      await Promise.all(gone)
    },
  }
}
