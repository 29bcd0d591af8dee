import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { Config } from '../../config.js'
import { helmetOptions } from '../../http/security-headers.js'

/** How long a refused upload may go on being read (and thrown away) after its answer was sent. */
const LINGER_MS = 2_000

/**
 * Fastify closes the connection after a body it refused (413, bad JSON): the client may still be
 * sending. Closing a socket with unread data resets it, and the reset can destroy the answer
 * before the client reads it: a client streaming a body past the limit would see "connection
 * reset" instead of the 413. So, as nginx does ("lingering close"), the server ends its side,
 * then reads and discards what still comes for at most LINGER_MS, and only then closes. Node
 * calls `destroySoon()` on the socket once the answer is written; this socket's does the above.
 */
function lingerOnClose(socket: Socket) {
  const lingering = socket as Socket & { destroySoon?: () => void }
  if (typeof lingering.destroySoon !== 'function') return
  lingering.destroySoon = () => {
    socket.end()
    const timer = setTimeout(() => socket.destroy(), LINGER_MS)
    timer.unref()
    socket.once('close', () => clearTimeout(timer))
    socket.once('end', () => socket.destroy())
    // Node's HTTP parser still owns the socket and reads (and discards) the rest of the refused
    // body, so the client's close is seen at once. A 'data' listener of our own would take the
    // socket from the parser, and reading would then stop for good with the body half read: the
    // connection would stay open until the timer, unnoticed by anything waiting for it to close
    // (a test's server.close() then awaits a promise nothing keeps alive).
  }
}

/**
 * HTTP hygiene: security headers on every response (helmet); `Cache-Control: no-store` on every
 * response that does not set its own caching (API answers carry tokens and user data, which no
 * browser or proxy cache may keep; the docs assets set their own, public, caching); and a
 * refused upload's answer delivered before its connection closes (lingerOnClose).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    // Built once: @fastify/helmet built helmet's whole middleware chain from the options on every
    // request, a few percent of a one-row read (docs/performance.md).
    const setSecurityHeaders = helmet(helmetOptions(config))
    // First of all hooks, on every request (unmatched ones too); a route may still set its own
    // value of one of these headers (the docs set their Content-Security-Policy).
    // (helmet calls back with an Error or nothing, as Fastify's done expects.)
    app.addHook('onRequest', (request, reply, done) =>
      setSecurityHeaders(request.raw, reply.raw, done as (error?: unknown) => void),
    )

    app.addHook('onSend', (request, reply, payload, done) => {
      if (!reply.hasHeader('cache-control') && !reply.raw.hasHeader('cache-control'))
        reply.header('cache-control', 'no-store')
      if (reply.getHeader('connection') === 'close' && !request.raw.complete)
        lingerOnClose(request.raw.socket)
      done(null, payload)
    })
  },
  { name: 'helmet' },
)
