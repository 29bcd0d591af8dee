import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'
import { uniqueUser } from './helper.js'

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
const SECRET = 'lifecycle-test-secret-key-0123456789-abcdef'
/** Safety nets only: a hung server fails its test instead of hanging the suite. */
const START_TIMEOUT_MS = 60_000
const WAIT_TIMEOUT_MS = 20_000

const workDirs: string[] = []
const children = new Set<ChildProcessWithoutNullStreams>()
after(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** `node --import tsx src/server.ts` in a folder of its own, logging JSON at info to stdout. */
function spawnServer() {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-lifecycle-'))
  workDirs.push(dir)
  const child = spawn(process.execPath, ['--import', TSX, SERVER], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      HOST: '127.0.0.1',
      PORT: '0',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      SECRET_KEY: SECRET,
      DATABASE_URL: `sqlite:///${path.join(dir, 'app.db')}`,
      RATE_LIMIT_ENABLED: 'false',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  children.add(child)
  const output = { stdout: '', stderr: '' }
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk))
  const exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child)
      resolve({ code, signal })
    }),
  )
  return { child, output, exited }
}

/** Polls `check` until it returns a value, or fails after `timeoutMs` (a safety net, not a timing claim). */
async function waitUntil<T>(
  what: string,
  check: () => T | undefined,
  timeoutMs = WAIT_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The JSON log lines the server wrote to stdout so far. */
function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

/** Whether a new TCP connection to the port is refused. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

describe('lifecycle: graceful shutdown', () => {
  test('on SIGTERM an in-flight request is finished and answered, new connections are refused, and the process exits 0', async () => {
    const server = spawnServer()
    const base = await waitUntil(
      'the server to listen',
      () => /listening on (http:\/\/[^\s/]+)/.exec(server.output.stdout)?.[1],
      START_TIMEOUT_MS,
    )
    const port = Number(new URL(base).port)
    assert.equal((await fetch(`${base}/healthz`)).status, 200)

    // A registration whose body arrives slowly: the request is in flight until the body is done.
    const user = uniqueUser()
    const body = Buffer.from(JSON.stringify(user))
    const half = Math.floor(body.length / 2)
    const socket: Socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    let answer = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
    const closed = once(socket, 'close')
    socket.write(
      'POST /users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `X-Request-Id: in-flight-1\r\nContent-Length: ${body.length}\r\n\r\n`,
    )
    socket.write(body.subarray(0, half))
    // The server has started on it (its log says so) before the signal comes.
    await waitUntil('the in-flight request to be logged', () =>
      logLines(server.output.stdout).find(
        (line) => line.reqId === 'in-flight-1' && line.msg === 'incoming request',
      ),
    )

    server.child.kill('SIGTERM')
    await waitUntil('the shutdown to begin', () =>
      logLines(server.output.stdout).find((line) => /shutting down/.test(String(line.msg))),
    )
    // No new connection is accepted from now on …
    let refused = false
    const deadline = Date.now() + WAIT_TIMEOUT_MS
    while (!refused && Date.now() < deadline) {
      refused = await connectionRefused(port)
      if (!refused) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(refused, 'a new connection is refused once shutdown has begun')
    assert.equal(server.child.exitCode, null, 'the process waits for the request in flight')

    // … but the request in flight is finished, and answered.
    socket.write(body.subarray(half))
    await closed
    const [head, json = ''] = answer.split('\r\n\r\n')
    assert.match(head!, /^HTTP\/1\.1 201 /, `the in-flight request was answered: ${answer}`)
    assert.match(head!, /\r\nconnection: close\r\n/i)
    const created = JSON.parse(json) as { id: number; email: string }
    assert.equal(created.email, user.email)

    let exit: Exit | undefined
    void server.exited.then((value) => (exit = value))
    await waitUntil('the process to exit', () => exit)
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${server.output.stderr}`)
    assert.equal(server.output.stderr, '', 'nothing went wrong on the way out')
    // The request completed before the database closed: it is logged as completed with 201.
    const completed = logLines(server.output.stdout).find(
      (line) => line.reqId === 'in-flight-1' && line.msg === 'request completed',
    )
    assert.equal((completed?.res as { statusCode?: number } | undefined)?.statusCode, 201)
  })
})
