import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino, stdSerializers, type Logger } from 'pino'
import { CENSOR, createLogger, redactUrl, SECRET_FIELDS } from '../../src/http/logging.js'

// src/logging.ts redacts by itself because pino's `redact` option was a quarter of the CPU time of
// a read (docs/performance.md). What it must write is what pino's `redact` wrote with the paths
// below (the server's configuration before): this test logs the same random objects through both
// and compares the lines, child loggers' bindings included.

const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key']
const REDACT_PATHS = [
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
  ...SECRET_HEADERS.flatMap((header) =>
    ['req.headers', 'res.headers', 'headers', 'request.headers'].map((at) => `${at}["${header}"]`),
  ),
]

interface LoggedRequest {
  method?: string
  url?: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}

/** pino as the server configured it before, through Fastify (its `res` and `err` serializers). */
const withPinoRedact = (stream: { write: (line: string) => void }) =>
  pino(
    {
      level: 'trace',
      timestamp: false,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      serializers: {
        res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
        err: stdSerializers.err,
        req: (request: LoggedRequest) => ({
          method: request.method,
          url: request.url === undefined ? undefined : redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort,
        }),
      },
    },
    stream,
  )

const ours = (stream: { write: (line: string) => void }) =>
  createLogger('trace', { level: 'trace', timestamp: false, stream } as never)!

/** A small deterministic generator, so that both loggers get equal (never shared) objects. */
function randomSource(seed: number) {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

const KEYS = [
  ...SECRET_FIELDS,
  ...SECRET_HEADERS,
  ...['headers', 'req', 'res', 'request', 'err', 'body', 'nested', 'user', 'items', 'reqId', 'Password'],
]
const LEAVES = ['s3cret', 'x', 'a "quoted"\nline', 42, 0, -1.5, true, false, null, undefined]

function logObjects(random: () => number) {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!
  const error = (depth: number) => {
    const made = Object.assign(new Error(`boom ${depth}`), { stack: 'Error: boom' }) as Error &
      Record<string, unknown>
    if (random() < 0.5) made.password = 'error-secret'
    if (random() < 0.3) made.details = object(depth + 1)
    return made
  }
  const value = (depth: number): unknown => {
    const r = random()
    if (depth > 3 || r < 0.35) return pick(LEAVES)
    if (r < 0.5) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1))
    if (r < 0.55) return error(depth)
    return object(depth + 1)
  }
  const object = (depth: number): Record<string, unknown> => {
    const result: Record<string, unknown> = {}
    for (let count = Math.floor(random() * 5); count > 0; count--) {
      const key = pick(KEYS)
      if (key === 'res') result.res = { statusCode: 200, headers: object(depth + 1) }
      else if (key === 'req')
        result.req = { method: 'GET', url: pick(['/x', '/y?token=abc&p=1']), headers: object(depth + 1) }
      else if (key === 'err' && random() < 0.5) result.err = error(depth)
      else result[key] = value(depth)
    }
    return result
  }
  return object
}

function logLines(make: (stream: { write: (line: string) => void }) => Logger, calls: number): string[] {
  const lines: string[] = []
  const root = make({ write: (line) => void lines.push(line) })
  const random = randomSource(20_251_124)
  const object = logObjects(random)
  for (let call = 0; call < calls; call++) {
    const r = random()
    // Children as the app makes them, and as Fastify makes each request's (with options).
    const log =
      r < 0.15
        ? root.child(object(0))
        : r < 0.3
          ? root.child(object(0), {}).child(object(0))
          : r < 0.35
            ? root.child({ reqId: `request-${call}` }, { level: 'trace' })
            : root
    log.info(object(0), random() < 0.5 ? 'message' : undefined)
  }
  return lines
}

test('our redaction writes exactly the lines pino`s redact option wrote (10,000 random log calls)', () => {
  const expected = logLines(withPinoRedact, 10_000)
  const actual = logLines(ours, 10_000)
  assert.equal(actual.length, expected.length)
  for (const [index, line] of actual.entries()) assert.equal(line, expected[index], `log call ${index}`)
  assert.ok(expected.some((line) => line.includes(CENSOR)))
})
