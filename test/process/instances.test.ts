/**
 * Several instances, one system: two real server processes
 * (`node --import tsx src/server.ts`) on different ports, on one database and one Redis, behave
 * as one. A token from one works on the other; a logout or a refresh-token replay on one is
 * refused by the other on the very next request; a rate limit counts the requests sent to both;
 * and killing one instance under load leaves the other serving without a single failed request.
 *
 * Every request goes over real HTTP. The instances trust 127.0.0.1 as their load balancer
 * (TRUST_PROXY), so that each test speaks for clients of its own through X-Forwarded-For: one
 * test's requests never use up another test's rate limit.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { testEngines, uniqueSku, uniqueUser, type EngineName, type TestDatabase } from '../support/app.js'
import { freePort, until } from '../support/processes.js'

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
/** tsx by absolute URL: each server runs in a folder of its own, away from any .env here. */
const TSX = import.meta.resolve('tsx')
const SECRET = `instances-test-${randomBytes(24).toString('base64url')}`
const POSTGRES_URL = process.env.TEST_POSTGRES_URL
const MYSQL_URL = process.env.TEST_MYSQL_URL
const REDIS_URL = process.env.TEST_REDIS_URL

/** Safety nets only (a server that never gets ready fails its hook instead of hanging the suite). */
const READY_TIMEOUT_MS = 120_000
const REQUEST_TIMEOUT_MS = 30_000

/** The global per-IP limit of the first pair: small, so that the test can reach it. */
const PER_MINUTE = 20
/** Login attempts per account per window, on the first pair. */
const PER_ACCOUNT = 4

// ------------------------------------------------------------------ server processes

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

interface Instance {
  name: string
  url: string
  child: ChildProcessWithoutNullStreams
  /** What the process wrote (stdout and stderr, interleaved), for the report of a failed test. */
  output: string
  exit: Exit | undefined
  exited: Promise<Exit>
}

const OUTPUT_KEPT = 32 * 1024
const instances = new Set<Instance>()
const workDirs: string[] = []

const alive = (instance: Instance) => instance.exit === undefined

/** Starts one server process on `port` with the given configuration (and nothing from this shell). */
function spawnInstance(name: string, port: number, env: Record<string, string>): Instance {
  const cwd = mkdtempSync(path.join(tmpdir(), 'fastauth-instance-'))
  workDirs.push(cwd)
  const child = spawn(process.execPath, ['--import', TSX, SERVER], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const instance: Instance = {
    name,
    url: `http://127.0.0.1:${port}`,
    child,
    output: '',
    exit: undefined,
    exited: new Promise<Exit>((resolve) => {
      child.on('close', (code, signal) => {
        instance.exit = { code, signal }
        resolve(instance.exit)
      })
    }),
  }
  const keep = (stream: string) => (chunk: string) => {
    instance.output = `${instance.output}[${stream}] ${chunk}`.slice(-OUTPUT_KEPT)
  }
  child.stdout.setEncoding('utf8').on('data', keep('stdout'))
  child.stderr.setEncoding('utf8').on('data', keep('stderr'))
  instances.add(instance)
  return instance
}

/** Waits until the instance answers GET /readyz with 200 (database and Redis reachable). */
async function waitUntilReady(instance: Instance) {
  await until(
    async () => {
      if (!alive(instance))
        throw new Error(`${instance.name} exited (${JSON.stringify(instance.exit)}) before it was ready`)
      try {
        const response = await fetch(`${instance.url}/readyz`, { signal: AbortSignal.timeout(5_000) })
        await response.arrayBuffer()
        return response.status === 200
      } catch {
        return false
      }
    },
    `${instance.name} answers /readyz`,
    READY_TIMEOUT_MS,
  )
}

/**
 * Starts an instance on a free port and waits until it is ready. The port was free a moment ago;
 * should another process take it first, the instance is started again on another one.
 */
async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  for (let attempt = 1; ; attempt += 1) {
    const instance = spawnInstance(name, await freePort(), env)
    try {
      await waitUntilReady(instance)
      return instance
    } catch (error) {
      // Only a process that exited saying so is retried (its output is complete once it exited).
      if (attempt >= 3 || alive(instance) || !/is already in use/.test(instance.output)) throw error
      instances.delete(instance)
    }
  }
}

/** Starts two instances at the same moment (they migrate the same database at once). */
async function startPair(
  names: [string, string],
  env: Record<string, string>,
): Promise<[Instance, Instance]> {
  const [first, second] = await Promise.all(names.map((name) => startInstance(name, env)))
  return [first!, second!]
}

async function kill(instance: Instance) {
  if (alive(instance)) instance.child.kill('SIGKILL')
  await instance.exited
}

/** A failed test (or hook) reports what every server process wrote. */
function serverReport(): string {
  return [...instances]
    .map(
      (instance) =>
        `--- ${instance.name} (${instance.url}, pid ${instance.child.pid}, ${
          instance.exit ? `exited ${JSON.stringify(instance.exit)}` : 'running'
        }):\n${instance.output.trim() || '(no output)'}`,
    )
    .join('\n')
}

function showingServerOutput<Args extends unknown[]>(
  body: (...args: Args) => Promise<void>,
): (...args: Args) => Promise<void> {
  return async (...args) => {
    try {
      await body(...args)
    } catch (error) {
      if (error instanceof Error) {
        // The reporter prints the stack, which holds the message as it was when the error was made.
        const report = `\n\nserver output:\n${serverReport()}`
        error.message += report
        error.stack = `${error.stack ?? ''}${report}`
      }
      throw error
    }
  }
}

// Whatever happens (a failed hook, an interrupted run), no server process outlives the test file.
process.on('exit', () => {
  for (const instance of instances) if (alive(instance)) instance.child.kill('SIGKILL')
})
after(async () => {
  await Promise.all([...instances].map(kill))
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})

// ------------------------------------------------------------------ HTTP

/** A client address, as the load balancer (127.0.0.1, trusted) reports it in X-Forwarded-For. */
let clients = 0
function newClient(): string {
  clients += 1
  return `198.18.${(clients >> 8) & 255}.${clients & 255}`
}

interface Answer {
  status: number
  headers: Headers
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, checked by each test
  body: any
}

interface Call {
  client: string
  token?: string
  json?: unknown
  form?: Record<string, string>
  headers?: Record<string, string>
}

async function send(instance: Instance, method: string, url: string, call: Call): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': call.client, ...call.headers }
  if (call.token) headers.authorization = `Bearer ${call.token}`
  let body: string | undefined
  if (call.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(call.json)
  } else if (call.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(call.form).toString()
  }
  const response = await fetch(`${instance.url}${url}`, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const text = await response.text()
  const json = /json/.test(response.headers.get('content-type') ?? '') && text !== ''
  return { status: response.status, headers: response.headers, body: json ? JSON.parse(text) : text }
}

function expectStatus(answer: Answer, status: number, what: string) {
  assert.equal(answer.status, status, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`)
  if (status >= 400) {
    assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what)
    assert.equal(answer.body.status, status, what)
  }
  return answer
}

interface TokenPair {
  access_token: string
  refresh_token: string
}

async function registerOn(instance: Instance, client: string) {
  const user = uniqueUser()
  const answer = expectStatus(
    await send(instance, 'POST', '/users/', { client, json: user }),
    201,
    'register',
  )
  return { ...user, id: answer.body.id as number }
}

async function loginOn(
  instance: Instance,
  client: string,
  user: { email: string; password: string },
): Promise<TokenPair> {
  const form = { username: user.email, password: user.password }
  return expectStatus(
    await send(instance, 'POST', '/login', { client, form }),
    200,
    `login on ${instance.name}`,
  ).body as TokenPair
}

const currentUser = (instance: Instance, client: string, token: string) =>
  send(instance, 'GET', '/current-user', { client, token })

const refresh = (instance: Instance, client: string, refreshToken: string) =>
  send(instance, 'POST', '/token/refresh', { client, json: { refresh_token: refreshToken } })

async function refreshOk(instance: Instance, client: string, refreshToken: string): Promise<TokenPair> {
  return expectStatus(await refresh(instance, client, refreshToken), 200, `refresh on ${instance.name}`)
    .body as TokenPair
}

async function expectAccepted(
  instance: Instance,
  client: string,
  token: string,
  userId: number,
  what: string,
) {
  const answer = expectStatus(await currentUser(instance, client, token), 200, what)
  assert.equal(answer.body.id, userId, what)
}

async function expectRefused(instance: Instance, client: string, token: string, what: string) {
  const answer = expectStatus(await currentUser(instance, client, token), 401, what)
  assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, what)
}

// ------------------------------------------------------------------ Redis keys

async function deleteKeysUnder(prefix: string) {
  const redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    await redis.quit()
  }
}

// ------------------------------------------------------------------ what is required

const missing = [!POSTGRES_URL && 'TEST_POSTGRES_URL', !REDIS_URL && 'TEST_REDIS_URL'].filter(Boolean)
if (missing.length > 0 && process.env.CI)
  test('CI gives this test PostgreSQL and Redis', () =>
    assert.fail(`${missing.join(' and ')} must be set in CI: two instances need a shared database and Redis`))

const engines: { name: Exclude<EngineName, 'sqlite'>; skip: string | false }[] = [
  {
    name: 'postgres',
    skip:
      missing.length > 0 ? `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set` : false,
  },
  {
    name: 'mysql',
    skip: !MYSQL_URL ? 'TEST_MYSQL_URL is not set' : !REDIS_URL ? 'TEST_REDIS_URL is not set' : false,
  },
]

// ------------------------------------------------------------------ the tests

for (const engine of engines) {
  describe(`two instances on one ${engine.name} database and one Redis`, { skip: engine.skip }, () => {
    const keyPrefix = `fastauth-test:instances:${process.pid}:${randomBytes(4).toString('hex')}:`
    let database: TestDatabase | undefined
    let a: Instance
    let b: Instance

    /** What every instance of this deployment shares; each pair adds its own limits and key prefix. */
    const sharedEnv = () => ({
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      SECRET_KEY: SECRET,
      DATABASE_URL: database!.url,
      REDIS_URL: REDIS_URL!,
      PUBLIC_URL: 'https://api.example.test',
      TRUST_PROXY: '127.0.0.1',
    })

    before(
      showingServerOutput(async () => {
        database = await testEngines()
          .find((candidate) => candidate.name === engine.name)!
          .create()
        // Both start at once on the new, empty database: each applies the migrations at start.
        ;[a, b] = await startPair(['A', 'B'], {
          ...sharedEnv(),
          REDIS_KEY_PREFIX: `${keyPrefix}limits:`,
          RATE_LIMIT_PER_MINUTE: String(PER_MINUTE),
          RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
          RATE_LIMIT_ATTEMPTS_PER_IP: '100',
        })
      }),
    )
    after(async () => {
      await Promise.all([...instances].map(kill))
      instances.clear()
      await database?.drop()
      if (REDIS_URL) await deleteKeysUnder(keyPrefix)
    })

    test(
      'a token from A works on B: the user, products, retries and list cursors are the same on both',
      showingServerOutput(async () => {
        const client = newClient()
        const user = await registerOn(a, client)
        const { access_token: token } = await loginOn(a, client, user)

        await expectAccepted(b, client, token, user.id, 'a token from A, on B')

        const product = { product_id: uniqueSku(), name: 'Made on B', price: 1250 }
        const idempotency = { 'idempotency-key': `instances-${randomBytes(8).toString('hex')}` }
        const created = expectStatus(
          await send(b, 'POST', '/product/', { client, token, json: product, headers: idempotency }),
          201,
          'create on B',
        )
        assert.equal(created.body.owner_id, user.id)
        const read = expectStatus(
          await send(a, 'GET', `/product/${created.body.id}`, { client, token }),
          200,
          'read on A',
        )
        assert.deepEqual(read.body, created.body)
        assert.equal(read.headers.get('etag'), created.headers.get('etag'))

        // The client's retry reaches the other instance: the same answer, no second product.
        const retried = expectStatus(
          await send(a, 'POST', '/product/', { client, token, json: product, headers: idempotency }),
          201,
          'the same request retried on A',
        )
        assert.deepEqual(retried.body, created.body)

        // A cursor from A continues the list on B (cursors are signed with the shared SECRET_KEY).
        const second = { product_id: uniqueSku(), name: 'Made on A', price: 1300 }
        expectStatus(await send(a, 'POST', '/product/', { client, token, json: second }), 201, 'create on A')
        const filter = `owner_id=${user.id}&sort=price&limit=1`
        const first = expectStatus(
          await send(a, 'GET', `/product/?${filter}`, { client, token }),
          200,
          'page 1 on A',
        )
        assert.deepEqual(
          first.body.items.map((item: { product_id: string }) => item.product_id),
          [product.product_id],
        )
        const cursor = encodeURIComponent(first.body.next_cursor as string)
        const next = expectStatus(
          await send(b, 'GET', `/product/?${filter}&cursor=${cursor}`, { client, token }),
          200,
          'page 2 on B',
        )
        assert.deepEqual(
          next.body.items.map((item: { product_id: string }) => item.product_id),
          [second.product_id],
        )
      }),
    )

    test(
      'a logout on A is refused by B on the very next request, for the access and the refresh token',
      showingServerOutput(async () => {
        const client = newClient()
        const user = await registerOn(a, client)
        const session = await loginOn(a, client, user)
        const other = await loginOn(b, client, user)
        await expectAccepted(b, client, session.access_token, user.id, 'before the logout, on B')

        expectStatus(
          await send(a, 'POST', '/logout', { client, token: session.access_token }),
          204,
          'logout on A',
        )

        await expectRefused(b, client, session.access_token, 'the logged-out access token, on B')
        expectStatus(
          await refresh(b, client, session.refresh_token),
          401,
          'the logged-out refresh token, on B',
        )
        await expectRefused(a, client, session.access_token, 'the logged-out access token, on A')
        // Only that session ended: the user's other session goes on, on both.
        await expectAccepted(b, client, other.access_token, user.id, 'the other session, on B')
        await expectAccepted(a, client, other.access_token, user.id, 'the other session, on A')
      }),
    )

    test(
      'a refresh token replayed on B after the session moved on ends the session on A and B at once',
      showingServerOutput(async () => {
        const client = newClient()
        const user = await registerOn(a, client)
        const first = await loginOn(a, client, user)
        const bystander = await loginOn(a, client, user)

        const second = await refreshOk(a, client, first.refresh_token)
        await expectAccepted(b, client, second.access_token, user.id, 'the rotated pair, on B')
        // The session moves on (its newest token is used): the first token coming back now is a
        // replay, not a duplicate of the rotation that used it (those are forgiven for 10 s).
        const third = await refreshOk(b, client, second.refresh_token)
        await expectAccepted(a, client, third.access_token, user.id, 'the newest pair, on A')

        expectStatus(await refresh(b, client, first.refresh_token), 401, 'the replayed refresh token, on B')

        await expectRefused(a, client, third.access_token, 'the newest access token after the replay, on A')
        await expectRefused(b, client, third.access_token, 'the newest access token after the replay, on B')
        expectStatus(await refresh(a, client, third.refresh_token), 401, 'the newest refresh token, on A')
        // The user's other session was not touched.
        await expectAccepted(b, client, bystander.access_token, user.id, 'another session, on B')
      }),
    )

    test(
      'the per-client limit counts the requests sent to A and to B together, with consistent RateLimit headers',
      showingServerOutput(async () => {
        const client = newClient()
        let lastReset = Infinity
        for (let request = 1; request <= PER_MINUTE; request += 1) {
          const instance = request % 2 ? a : b
          const answer = expectStatus(
            await send(instance, 'GET', '/healthz', { client }),
            200,
            `request ${request}, on ${instance.name}`,
          )
          assert.equal(answer.headers.get('ratelimit-limit'), String(PER_MINUTE), `request ${request}`)
          // One count for both: the remaining allowance goes down by one whichever instance answers.
          assert.equal(
            answer.headers.get('ratelimit-remaining'),
            String(PER_MINUTE - request),
            `request ${request}`,
          )
          const reset = Number(answer.headers.get('ratelimit-reset'))
          assert.ok(
            reset >= 1 && reset <= 60 && reset <= lastReset,
            `ratelimit-reset ${reset} after ${lastReset}`,
          )
          lastReset = reset
        }
        for (const instance of [a, b]) {
          const answer = expectStatus(
            await send(instance, 'GET', '/healthz', { client }),
            429,
            `past the limit, on ${instance.name}`,
          )
          assert.equal(answer.headers.get('ratelimit-limit'), String(PER_MINUTE))
          assert.equal(answer.headers.get('ratelimit-remaining'), '0')
          const retryAfter = Number(answer.headers.get('retry-after'))
          assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`)
        }
        // Another client behind the same balancer is not held back.
        expectStatus(await send(b, 'GET', '/healthz', { client: newClient() }), 200, 'another client')
      }),
    )

    test(
      'login attempts on one account count together on A and B, whatever address they come from',
      showingServerOutput(async () => {
        const user = await registerOn(a, newClient())
        const statuses: number[] = []
        for (let attempt = 1; attempt <= PER_ACCOUNT + 2; attempt += 1) {
          const form = { username: user.email, password: 'not the password at all' }
          const answer = await send(attempt % 2 ? a : b, 'POST', '/login', { client: newClient(), form })
          statuses.push(answer.status)
        }
        assert.deepEqual(statuses, [...Array<number>(PER_ACCOUNT).fill(401), 429, 429])
        // Now even the right password is held back, on both.
        for (const instance of [a, b]) {
          const form = { username: user.email, password: user.password }
          const answer = expectStatus(
            await send(instance, 'POST', '/login', { client: newClient(), form }),
            429,
            `the right password, on ${instance.name}`,
          )
          assert.equal(answer.headers.get('ratelimit-limit'), String(PER_ACCOUNT))
          assert.equal(answer.headers.get('ratelimit-remaining'), '0')
          assert.ok(Number(answer.headers.get('retry-after')) >= 1)
        }
      }),
    )

    describe('one instance killed under load', () => {
      let c: Instance
      let d: Instance

      before(
        showingServerOutput(async () => {
          // A pair of their own with the default attempt limits and a per-client limit the load
          // cannot reach (the load comes from one client), so that every refusal would be a fault.
          ;[c, d] = await startPair(['C', 'D'], {
            ...sharedEnv(),
            REDIS_KEY_PREFIX: `${keyPrefix}load:`,
            RATE_LIMIT_PER_MINUTE: '1000000',
          })
        }),
      )

      test(
        'SIGKILL on D mid-load: every request to C succeeds, and D fails only by connection errors',
        showingServerOutput(async (t: TestContext) => {
          const client = newClient()
          const user = await registerOn(c, client)
          const { access_token: token } = await loginOn(d, client, user)

          interface Tally {
            ok: { before: number; after: number }
            /** Answers other than 2xx: there must be none. */
            refused: string[]
            /** Requests that got no answer, with their error code. */
            failed: { phase: 'before' | 'after'; code: string }[]
          }
          const tally = (): Tally => ({ ok: { before: 0, after: 0 }, refused: [], failed: [] })
          const onC = tally()
          const onD = tally()
          let killed = false
          let stop = false

          /** One request of a mix: an authenticated read, a write, a list. */
          async function oneRequest(instance: Instance, turn: number) {
            switch (turn % 3) {
              case 0:
                return send(instance, 'GET', '/current-user', { client, token })
              case 1:
                return send(instance, 'POST', '/product/', {
                  client,
                  token,
                  json: { product_id: uniqueSku(), name: `Load on ${instance.name}`, price: turn },
                })
              default:
                return send(instance, 'GET', `/product/?owner_id=${user.id}&limit=5`, { client, token })
            }
          }

          /** One client's loop: sends its next request as soon as the last one is answered. */
          async function worker(instance: Instance, counts: Tally, offset: number) {
            for (let turn = offset; !stop; turn += 1) {
              // Answers count for the phase their request was sent in; failures for the phase they
              // arrive in (a request in flight when D is killed fails after the kill).
              const sentAfterKill = killed
              try {
                const answer = await oneRequest(instance, turn)
                if (answer.status >= 200 && answer.status < 300)
                  counts.ok[sentAfterKill ? 'after' : 'before'] += 1
                else counts.refused.push(`${answer.status} ${JSON.stringify(answer.body)}`)
              } catch (error) {
                const cause = (error as { cause?: { code?: string } }).cause
                const phase = killed ? 'after' : 'before'
                counts.failed.push({ phase, code: cause?.code ?? (error as Error).name })
                // A balancer takes a failing instance out: this connection stops sending to it.
                if (instance === d) return
              }
            }
          }

          /** Concurrent connections per instance, and the answers each instance must give first. */
          const WORKERS = 4
          const BEFORE = 100
          const AFTER = 300
          const running = [c, d].flatMap((instance) =>
            Array.from({ length: WORKERS }, (_, index) =>
              worker(instance, instance === c ? onC : onD, index),
            ),
          )
          try {
            // A fault ends the waiting at once: the assertions below then say what it was.
            const fault = () =>
              onC.failed.length + onC.refused.length + onD.refused.length > 0 ||
              onD.failed.some((failure) => failure.phase === 'before')
            await until(
              () => fault() || (onC.ok.before >= BEFORE && onD.ok.before >= BEFORE),
              'both instances serve the load',
              60_000,
            )
            killed = true
            d.child.kill('SIGKILL')
            assert.deepEqual(await d.exited, { code: null, signal: 'SIGKILL' })
            await until(
              () => fault() || (onC.ok.after >= AFTER && onD.failed.length >= WORKERS),
              'C serves on after the kill, and every connection to D has failed',
              60_000,
            )
          } finally {
            stop = true
            await Promise.all(running)
          }

          t.diagnostic(
            `C answered ${onC.ok.before} + ${onC.ok.after} requests (before + after the kill); D answered ` +
              `${onD.ok.before + onD.ok.after}, then failed with ${onD.failed.map((failure) => failure.code).join(', ')}`,
          )
          // The survivor: not one failed request, not one refusal, before or after the kill.
          assert.deepEqual(onC.failed, [], 'requests to C without an answer')
          assert.deepEqual(onC.refused, [], 'answers from C other than 2xx')
          assert.ok(onC.ok.after >= AFTER, `C answered ${onC.ok.after} requests after the kill`)
          // The killed one: answers until the kill, then connection errors only (whether the request
          // was in flight or sent after).
          assert.deepEqual(onD.refused, [], 'answers from D other than 2xx')
          assert.ok(onD.ok.before >= BEFORE)
          assert.ok(onD.failed.length >= WORKERS)
          for (const failure of onD.failed) {
            assert.equal(failure.phase, 'after', `D failed before it was killed: ${failure.code}`)
            assert.ok(
              ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(
                failure.code,
              ),
              `not a connection error: ${failure.code}`,
            )
          }

          // The session that started on D goes on through C alone.
          await expectAccepted(c, client, token, user.id, 'the token from D, on C after the kill')
        }),
      )
    })
  })
}
