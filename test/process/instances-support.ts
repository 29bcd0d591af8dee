/**
 * What the instances tests share: real server processes (`node --import tsx src/server.ts`) on
 * free ports, an HTTP client that speaks for clients of its own through X-Forwarded-For, and the
 * deployments (one database and one Redis per engine) that the test files start their pairs on.
 * Each test file that imports this gets a database, a Redis key prefix and server processes of
 * its own; no server process outlives the file.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe } from 'node:test'
import { Redis } from 'ioredis'
import { testEngines, uniqueUser, type EngineName, type TestDatabase } from '../support/app.js'
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
export const PER_MINUTE = 20
/** Login attempts per account per window, on the first pair. */
export const PER_ACCOUNT = 4

// ------------------------------------------------------------------ server processes

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Instance {
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
export async function startPair(
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

export function showingServerOutput<Args extends unknown[]>(
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
export function newClient(): string {
  clients += 1
  return `198.18.${(clients >> 8) & 255}.${clients & 255}`
}

export interface Answer {
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

export async function send(instance: Instance, method: string, url: string, call: Call): Promise<Answer> {
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

export function expectStatus(answer: Answer, status: number, what: string) {
  assert.equal(answer.status, status, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`)
  if (status >= 400) {
    assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what)
    assert.equal(answer.body.status, status, what)
  }
  return answer
}

export interface TokenPair {
  access_token: string
  refresh_token: string
}

export async function registerOn(instance: Instance, client: string) {
  const user = uniqueUser()
  const answer = expectStatus(
    await send(instance, 'POST', '/users/', { client, json: user }),
    201,
    'register',
  )
  return { ...user, id: answer.body.id as number }
}

export async function loginOn(
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

export const currentUser = (instance: Instance, client: string, token: string) =>
  send(instance, 'GET', '/current-user', { client, token })

export const refresh = (instance: Instance, client: string, refreshToken: string) =>
  send(instance, 'POST', '/token/refresh', { client, json: { refresh_token: refreshToken } })

export async function refreshOk(
  instance: Instance,
  client: string,
  refreshToken: string,
): Promise<TokenPair> {
  return expectStatus(await refresh(instance, client, refreshToken), 200, `refresh on ${instance.name}`)
    .body as TokenPair
}

export async function expectAccepted(
  instance: Instance,
  client: string,
  token: string,
  userId: number,
  what: string,
) {
  const answer = expectStatus(await currentUser(instance, client, token), 200, what)
  assert.equal(answer.body.id, userId, what)
}

export async function expectRefused(instance: Instance, client: string, token: string, what: string) {
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

export const missing = [!POSTGRES_URL && 'TEST_POSTGRES_URL', !REDIS_URL && 'TEST_REDIS_URL'].filter(Boolean)

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

// ------------------------------------------------------------------ deployments

/** One deployment: a database of its own and a Redis key prefix of its own, for one engine. */
export interface Deployment {
  keyPrefix: string
  /** What every instance of this deployment shares; each pair adds its own limits and key prefix. */
  sharedEnv: () => Record<string, string>
}

/**
 * A describe block per engine (skipped when its database or Redis is not configured) whose
 * `before` creates the deployment's database and whose `after` stops every server process and
 * removes the database and the Redis keys; `body` declares the pairs and tests that run on it.
 */
export function describeEachDeployment(body: (deployment: Deployment) => void) {
  for (const engine of engines) {
    describe(`two instances on one ${engine.name} database and one Redis`, { skip: engine.skip }, () => {
      const keyPrefix = `fastauth-test:instances:${process.pid}:${randomBytes(4).toString('hex')}:`
      let database: TestDatabase | undefined

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
        }),
      )
      after(async () => {
        await Promise.all([...instances].map(kill))
        instances.clear()
        await database?.drop()
        if (REDIS_URL) await deleteKeysUnder(keyPrefix)
      })

      body({ keyPrefix, sharedEnv })
    })
  }
}

/** A and B, with the small limits (PER_MINUTE, PER_ACCOUNT) that the tests can reach. */
export function startLimitedPair({ keyPrefix, sharedEnv }: Deployment): Promise<[Instance, Instance]> {
  // Both start at once on the new, empty database: each applies the migrations at start.
  return startPair(['A', 'B'], {
    ...sharedEnv(),
    REDIS_KEY_PREFIX: `${keyPrefix}limits:`,
    RATE_LIMIT_PER_MINUTE: String(PER_MINUTE),
    RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
    RATE_LIMIT_ATTEMPTS_PER_IP: '100',
  })
}
