/**
 * The reference server of `npm run bench` (issues 7 and 17): a bare Fastify app that does the
 * minimal work of each benchmarked route and nothing else — no logging, metrics, security headers,
 * rate limits, schemas, revocation check or query builder. Each request verifies an HS256 JWT with jose (the
 * key imported once), runs one prepared query and returns the row(s) as JSON: GET /product/{id},
 * GET /product/, POST /product/, GET /users/{id}, and POST /login (argon2id verify, then a token).
 *
 * Self-contained on purpose (only npm imports): bench/index.ts compiles it to JavaScript and runs
 * it as its own process, as it runs our server from dist/.
 *
 * Environment: REFERENCE_ENGINE (sqlite | postgres), REFERENCE_DATABASE (a SQLite file or a
 * postgres:// URL), REFERENCE_SQLITE_SYNCHRONOUS (full | normal, as our server's
 * SQLITE_SYNCHRONOUS; full by default), PORT, SECRET_KEY, JWT_ISSUER, JWT_AUDIENCE.
 */
import { verify as verifyHash } from '@node-rs/argon2'
import Database from 'better-sqlite3'
import Fastify, { type FastifyRequest } from 'fastify'
import { jwtVerify, SignJWT } from 'jose'
import pg from 'pg'

const env = (name: string) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

const engine = env('REFERENCE_ENGINE')
const issuer = env('JWT_ISSUER')
const audience = env('JWT_AUDIENCE')
const key = await crypto.subtle.importKey(
  'raw',
  new TextEncoder().encode(env('SECRET_KEY')),
  { name: 'HMAC', hash: 'SHA-256' },
  false,
  ['sign', 'verify'],
)
const verifyOptions = { algorithms: ['HS256'], issuer, audience }

type Row = Record<string, unknown>

/** The five queries the routes need, on either engine. */
interface Queries {
  productById(id: number): Promise<Row | undefined>
  /** A user's public columns (those of our UserPublic: no hash). */
  userById(id: number): Promise<Row | undefined>
  /** The first `limit` products in primary key order. */
  productPage(limit: number): Promise<Row[]>
  insertProduct(values: unknown[]): Promise<Row>
  credentialsByEmail(email: string): Promise<{ id: number; password_hash: string } | undefined>
}

const PRODUCT_COLUMNS = 'id, product_id, name, description, price, owner_id, created_at, updated_at'
const USER_COLUMNS = 'id, name, email, role, is_active, email_verified, created_at, updated_at'
const INSERT_COLUMNS =
  'product_id, name, description, price, owner_id, version, search_text, created_at, updated_at'

function sqliteQueries(file: string, synchronous: string): Queries {
  if (synchronous !== 'full' && synchronous !== 'normal')
    throw new Error(`REFERENCE_SQLITE_SYNCHRONOUS must be full or normal, not "${synchronous}"`)
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
  db.pragma('busy_timeout = 5000')
  const byId = db.prepare(`select ${PRODUCT_COLUMNS} from products where id = ?`)
  const page = db.prepare(`select ${PRODUCT_COLUMNS} from products order by id limit ?`)
  const user = db.prepare(`select ${USER_COLUMNS} from users where id = ?`)
  // Read with .all(): a RETURNING statement left open by .get() would stop WAL checkpoints.
  const insert = db.prepare(
    `insert into products (${INSERT_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?) returning ${PRODUCT_COLUMNS}`,
  )
  const credentials = db.prepare('select id, password_hash from users where email = ?')
  return {
    productById: async (id) => byId.get(id) as Row | undefined,
    productPage: async (limit) => page.all(limit) as Row[],
    userById: async (id) => user.get(id) as Row | undefined,
    insertProduct: async (values) => (insert.all(values) as Row[])[0]!,
    credentialsByEmail: async (email) =>
      credentials.get(email) as { id: number; password_hash: string } | undefined,
  }
}

function postgresQueries(url: string): Queries {
  // The same pool size as our server's default; bigint (price) as a number, as our server does.
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pg.types.builtins.INT8
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  })
  return {
    productById: async (id) =>
      (await pool.query(`select ${PRODUCT_COLUMNS} from products where id = $1`, [id])).rows[0],
    productPage: async (limit) =>
      (await pool.query(`select ${PRODUCT_COLUMNS} from products order by id limit $1`, [limit])).rows,
    userById: async (id) =>
      (await pool.query(`select ${USER_COLUMNS} from users where id = $1`, [id])).rows[0],
    insertProduct: async (values) =>
      (
        await pool.query(
          `insert into products (${INSERT_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${PRODUCT_COLUMNS}`,
          values,
        )
      ).rows[0],
    credentialsByEmail: async (email) =>
      (await pool.query('select id, password_hash from users where email = $1', [email])).rows[0],
  }
}

const queries =
  engine === 'sqlite'
    ? sqliteQueries(env('REFERENCE_DATABASE'), process.env.REFERENCE_SQLITE_SYNCHRONOUS ?? 'full')
    : postgresQueries(env('REFERENCE_DATABASE'))

const app = Fastify({ logger: false })
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) =>
  done(null, Object.fromEntries(new URLSearchParams(body as string))),
)

/** The caller's user id from a valid bearer token; undefined when there is none or it is invalid. */
async function userIdOf(request: FastifyRequest): Promise<number | undefined> {
  const header = request.headers.authorization
  if (!header?.startsWith('Bearer ')) return undefined
  try {
    const { payload } = await jwtVerify(header.slice(7), key, verifyOptions)
    return Number(payload.sub)
  } catch {
    return undefined
  }
}

app.get('/healthz', async () => ({ status: 'ok' }))

app.get<{ Params: { id: string } }>('/product/:id', async (request, reply) => {
  if ((await userIdOf(request)) === undefined) return reply.code(401).send({ detail: 'unauthorized' })
  const product = await queries.productById(Number(request.params.id))
  if (!product) return reply.code(404).send({ detail: 'not found' })
  return product
})

// Ours lets a user read their own account (or an admin any): the same rule, a comparison here.
app.get<{ Params: { id: string } }>('/users/:id', async (request, reply) => {
  const userId = await userIdOf(request)
  if (userId === undefined) return reply.code(401).send({ detail: 'unauthorized' })
  const id = Number(request.params.id)
  if (id !== userId) return reply.code(403).send({ detail: 'forbidden' })
  const user = await queries.userById(id)
  if (!user) return reply.code(404).send({ detail: 'not found' })
  return user
})

app.get<{ Querystring: { limit?: string } }>('/product/', async (request, reply) => {
  if ((await userIdOf(request)) === undefined) return reply.code(401).send({ detail: 'unauthorized' })
  return { items: await queries.productPage(Math.min(100, Number(request.query.limit ?? 20))) }
})

app.post<{ Body: { product_id: string; name: string; description?: string; price: number } }>(
  '/product/',
  async (request, reply) => {
    const userId = await userIdOf(request)
    if (userId === undefined) return reply.code(401).send({ detail: 'unauthorized' })
    const { product_id, name, description = '', price } = request.body
    const now = new Date().toISOString()
    const createdAt = engine === 'sqlite' ? now : new Date(now)
    const searchText = `${product_id}\n${name}\n${description}`.toLowerCase()
    const row = await queries.insertProduct([
      product_id,
      name,
      description,
      price,
      userId,
      1,
      searchText,
      createdAt,
      createdAt,
    ])
    return reply.code(201).send(row)
  },
)

app.post<{ Body: { username: string; password: string } }>('/login', async (request, reply) => {
  const { username, password } = request.body
  const user = await queries.credentialsByEmail(username.toLowerCase())
  if (!user || !(await verifyHash(user.password_hash, password)))
    return reply.code(401).send({ detail: 'bad credentials' })
  const token = await new SignJWT({ user_id: user.id })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(user.id))
    .setIssuedAt()
    .setExpirationTime('15m')
    .setIssuer(issuer)
    .setAudience(audience)
    .sign(key)
  return { access_token: token, token_type: 'bearer' }
})

await app.listen({ host: '127.0.0.1', port: Number(env('PORT')) })
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)))
