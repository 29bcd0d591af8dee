import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import pg from 'pg'
import { buildApp, type BuildOptions } from '../../src/app.js'
import { secretKeyId } from '../../src/auth/signing-keys.js'
import { loadConfig, type Config } from '../../src/config.js'

export type EngineName = 'sqlite' | 'postgres' | 'mysql'

export interface TestDatabase {
  url: string
  drop(): Promise<void>
}

interface TestEngine {
  name: EngineName
  /** Why the engine is skipped, when it is. */
  skip?: string
  create(): Promise<TestDatabase>
}

/**
 * What the names of test databases (and of SQLite folders, with a dash) start with:
 * `fastauth_test`, or `fastauth_<TEST_DATABASE_TAG>`. `npm run mutate` sets the tag, so that what
 * its stopped test files leave behind is told apart from the databases of a test run beside it.
 */
const tag = process.env.TEST_DATABASE_TAG ?? 'test'
if (!/^[a-z][a-z0-9]*$/.test(tag))
  throw new Error(`TEST_DATABASE_TAG must be one word of lowercase letters and digits, not "${tag}"`)
export const TEST_DATABASE_PREFIX = `fastauth_${tag}`

const uniqueName = () =>
  `${TEST_DATABASE_PREFIX}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`

/** A fresh SQLite file in its own temporary folder. */
async function createSqliteDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(path.join(tmpdir(), `${TEST_DATABASE_PREFIX.replace('_', '-')}-`))
  return {
    url: `sqlite:///${path.join(dir, 'test.db')}`,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** A fresh PostgreSQL database next to the one TEST_POSTGRES_URL names, dropped afterwards. */
async function createPostgresDatabase(adminUrl: string): Promise<TestDatabase> {
  const name = uniqueName()
  const admin = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: adminUrl, max: 1 }) }),
  })
  await sql`create database ${sql.id(name)}`.execute(admin)
  await admin.destroy()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = new Kysely<unknown>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: adminUrl, max: 1 }) }),
      })
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(dropper)
      await dropper.destroy()
    },
  }
}

/** A fresh MySQL/MariaDB database on the server TEST_MYSQL_URL names, dropped afterwards. */
async function createMysqlDatabase(adminUrl: string): Promise<TestDatabase> {
  const name = uniqueName()
  const connect = () =>
    new Kysely<unknown>({
      dialect: new MysqlDialect({ pool: createPool({ uri: adminUrl, connectionLimit: 1 }) }),
    })
  const admin = connect()
  await sql`create database ${sql.id(name)} character set utf8mb4 collate utf8mb4_bin`.execute(admin)
  await admin.destroy()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = connect()
      await sql`drop database if exists ${sql.id(name)}`.execute(dropper)
      await dropper.destroy()
    },
  }
}

/** SQLite always; PostgreSQL and MySQL/MariaDB when their URLs are given. */
export function testEngines(): TestEngine[] {
  const postgresUrl = process.env.TEST_POSTGRES_URL
  const mysqlUrl = process.env.TEST_MYSQL_URL
  return [
    { name: 'sqlite', create: createSqliteDatabase },
    {
      name: 'postgres',
      skip: postgresUrl ? undefined : 'TEST_POSTGRES_URL is not set',
      create: () => createPostgresDatabase(postgresUrl!),
    },
    {
      name: 'mysql',
      skip: mysqlUrl ? undefined : 'TEST_MYSQL_URL is not set',
      create: () => createMysqlDatabase(mysqlUrl!),
    },
  ]
}

export const TEST_SECRET = 'test-secret-key-that-is-long-enough-0123456789'
/** The `kid` of the tokens TEST_SECRET signs (HS256): a forged token names it, as a real one does. */
export const TEST_KID = secretKeyId(TEST_SECRET, 'HS256')

/** Configuration for tests: passed in, never read from .env. */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  // Rate limits are off unless a test turns them on: suites log in many times from 127.0.0.1.
  return loadConfig({
    NODE_ENV: 'test',
    SECRET_KEY: TEST_SECRET,
    LOG_LEVEL: 'silent',
    DATA_DIR: tmpdir(),
    RATE_LIMIT_ENABLED: 'false',
    ...env,
  })
}

export interface EngineContext {
  engine: EngineName
  /** The app under test, built fresh for this describe block on its own database. */
  app: FastifyInstance
  config: Config
  databaseUrl: string
}

/**
 * Runs the same tests once per engine, each on a database of its own, created before and dropped
 * after. Engines without a URL are reported as skipped, by name.
 */
export function describeEachEngine(
  title: string,
  tests: (ctx: EngineContext) => void,
  options: { env?: Record<string, string>; build?: BuildOptions } = {},
) {
  for (const engine of testEngines()) {
    describe(`${title} [${engine.name}]`, { skip: engine.skip }, () => {
      const ctx = { engine: engine.name } as EngineContext
      let database: TestDatabase | undefined
      before(async () => {
        database = await engine.create()
        ctx.databaseUrl = database.url
        ctx.config = testConfig({ DATABASE_URL: database.url, ...options.env })
        ctx.app = await buildApp(ctx.config, { logger: false, ...options.build })
        await ctx.app.ready()
      })
      after(async () => {
        await ctx.app?.close()
        await database?.drop()
      })
      tests(ctx)
    })
  }
}

// ------------------------------------------------------------------ data and requests

let counter = 0
/** Unique data for each test, so tests never depend on each other's rows. */
export function uniqueUser(overrides: Partial<{ name: string; email: string; password: string }> = {}) {
  counter += 1
  const tag = `${Date.now().toString(36)}${counter}${randomBytes(3).toString('hex')}`
  return {
    name: `user_${tag}`,
    email: `user_${tag}@example.com`,
    password: `pw-${tag}-long enough`,
    ...overrides,
  }
}

export function uniqueSku(): string {
  counter += 1
  return `SKU-${Date.now().toString(36)}-${counter}-${randomBytes(3).toString('hex')}`
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export async function register(app: FastifyInstance, user = uniqueUser()) {
  const response = await app.inject({ method: 'POST', url: '/users/', payload: user })
  if (response.statusCode !== 201)
    throw new Error(`registration failed: ${response.statusCode} ${response.body}`)
  return { ...user, id: response.json<{ id: number }>().id }
}

export async function login(app: FastifyInstance, username: string, password: string): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString(),
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json<{ access_token: string }>().access_token
}

/** A registered user with a token from the real /login. */
export async function registerAndLogin(app: FastifyInstance, user = uniqueUser()) {
  const registered = await register(app, user)
  const token = await login(app, user.email, user.password)
  return { ...registered, token, headers: bearer(token) }
}

/** An admin, created the way an operator would (the role is set directly in the database), logged in. */
export async function adminAndLogin(app: FastifyInstance) {
  const user = await register(app)
  await app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', user.id).execute()
  const token = await login(app, user.email, user.password)
  return { ...user, token, headers: bearer(token) }
}

export function assertProblem(
  response: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
  status: number,
) {
  const body = response.json() as { type?: unknown; title?: unknown; status?: unknown; detail?: unknown }
  if (response.statusCode !== status)
    throw new Error(`expected status ${status}, got ${response.statusCode}: ${JSON.stringify(body)}`)
  if (!String(response.headers['content-type']).startsWith('application/problem+json'))
    throw new Error(`expected application/problem+json, got ${String(response.headers['content-type'])}`)
  if (
    body.status !== status ||
    typeof body.title !== 'string' ||
    typeof body.detail !== 'string' ||
    typeof body.type !== 'string'
  )
    throw new Error(`not a problem+json body: ${JSON.stringify(body)}`)
  return body as {
    type: string
    title: string
    status: number
    detail: string
    /** A machine-readable reason a client can act on (mfa_required, reauthentication_required…). */
    error?: string
    errors?: { in: string; field: string; message: string }[]
  }
}

/** A pino logger for buildApp whose JSON lines the test can read (level `info` unless told). */
export function captureLog(level = 'info') {
  const lines: { level: number; msg: string; [field: string]: unknown }[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as { level: number; msg: string })
      done()
    },
  })
  return { lines, logger: { level, stream } satisfies BuildOptions['logger'] }
}

/** The fields of a product and of a user as the API shows them, sorted (what Object.keys must give). */
export const PRODUCT_FIELDS = [
  'created_at',
  'description',
  'id',
  'name',
  'owner_id',
  'price',
  'product_id',
  'updated_at',
]
export const USER_FIELDS = [
  'created_at',
  'email',
  'email_verified',
  'id',
  'is_active',
  'name',
  'role',
  'updated_at',
]

export interface ProductBody {
  id: number
  product_id: string
  name: string
  description: string
  price: number
  owner_id: number | null
  created_at: string
  updated_at: string
}

export interface ProductPage {
  items: ProductBody[]
  next_cursor: string | null
}

/** Someone acting through the API: their id and the headers that carry their token. */
export interface TestActor {
  id: number
  headers: Record<string, string>
}
