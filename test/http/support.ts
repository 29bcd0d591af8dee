/** Header checks and raw connections shared by the HTTP-level tests. */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'

// ------------------------------------------------------------------ helpers

/** A Content-Security-Policy header as a map of directive → values. */
export function parseCsp(header: unknown): Map<string, string[]> {
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
export function assertApiHeaders(response: { headers: Record<string, unknown> }, what: string) {
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

export interface RawConnection {
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
export async function rawConnection(base: string): Promise<RawConnection> {
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
export async function write(socket: Socket, data: string | Buffer) {
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
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The status and problem body of a raw HTTP/1.1 response. */
export function parseRawResponse(text: string) {
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
