/**
 * Property-based API tests: every operation of /openapi.json gets many generated requests, valid
 * and deliberately invalid, sent over real HTTP to a listening server, and every answer must
 * (1) never be a 5xx, (2) when an error, be application/problem+json as our error handler writes
 * it, (3) when a success, have a status the operation declares and a body its schema accepts, and
 * (4) refuse (4xx) every body its schema refuses.
 *
 * PROPERTY_RUNS sets the runs per operation (default 100); FC_SEED (and FC_PATH) replay a failure
 * that fast-check reported; PROPERTY_ONLY="POST /login" runs only the operations containing that
 * text. PROPERTY_WITH_REDIS=1 runs the server with TEST_REDIS_URL.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { before, test } from 'node:test'
import fc from 'fast-check'
import { SignJWT } from 'jose'
import { buildApp } from '../../src/app.js'
import { describeEachEngine, testConfig, uniqueSku, uniqueUser, type EngineContext } from '../support/app.js'
import {
  JsonLiteral,
  schemaArbitraries,
  toJsonText,
  withKey,
  type Schema,
  type SchemaArbitraries,
} from '../support/schema-arbitraries.js'

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100)
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const ONLY = process.env.PROPERTY_ONLY
/** PROPERTY_WITH_REDIS=1 (with TEST_REDIS_URL): the server keeps its shared state in Redis, as in production. */
const REDIS_ENV: Record<string, string> =
  process.env.PROPERTY_WITH_REDIS && process.env.TEST_REDIS_URL
    ? { REDIS_URL: process.env.TEST_REDIS_URL, REDIS_KEY_PREFIX: `fastauth-properties-${randomUUID()}:` }
    : {}

interface Parameter {
  in: 'path' | 'query' | 'header' | 'cookie'
  name: string
  required?: boolean
  schema: Schema
}
interface Operation {
  parameters?: Parameter[]
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>
}

// ------------------------------------------------------------------ the world the requests act on

/** A name for a row or a secret of the running server, looked up when the request is sent. */
class Known {
  constructor(readonly ref: string) {}
  toString() {
    return `<${this.ref}>`
  }
}

type Role = 'user' | 'admin'
type Who = 'user' | 'admin' | 'other'

interface Account {
  role: Role
  id: number
  name: string
  email: string
  password: string
  token: string
  refreshToken: string
  usedRefreshToken?: string
  productId: number
  sku: string
}

const sessionOf = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid

/**
 * The fixture accounts (a user, an admin, another user), each with a token from the real /login
 * and a product. Requests may delete, demote, log out or re-password them: `ensure` notices and
 * puts a fresh one in place, so every run starts from working fixtures.
 */
class World {
  accounts = {} as Record<Who, Account>
  /** Tokens that must be refused: revoked, expired, signed with another key. */
  deadTokens: string[] = []
  /** By list operation: the query of the next page of the last page it answered. */
  nextPages = new Map<string, string>()

  constructor(
    readonly base: string,
    readonly ctx: EngineContext,
  ) {}

  async call(method: string, path: string, options: { token?: string; json?: unknown; form?: object } = {}) {
    const headers: Record<string, string> = {}
    if (options.token) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.json)
    } else if (options.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(options.form as Record<string, string>).toString()
    }
    const response = await fetch(this.base + path, { method, headers, body })
    const text = await response.text()
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }

  async login(username: string, password: string) {
    const response = await this.call('POST', '/login', { form: { username, password } })
    assert.equal(response.status, 200, `fixture login: ${JSON.stringify(response.body)}`)
    return response.body as { access_token: string; refresh_token: string }
  }

  async createProduct(token: string) {
    const sku = uniqueSku()
    const response = await this.call('POST', '/product/', {
      token,
      json: { product_id: sku, name: 'Fixture', price: 100 },
    })
    assert.equal(response.status, 201, `fixture product: ${JSON.stringify(response.body)}`)
    return { id: response.body.id as number, sku }
  }

  async createAccount(role: Role): Promise<Account> {
    const user = uniqueUser()
    const created = await this.call('POST', '/users/', { json: user })
    assert.equal(created.status, 201, `fixture registration: ${JSON.stringify(created.body)}`)
    const id = created.body.id as number
    if (role === 'admin')
      await this.ctx.app.db.updateTable('users').set({ role }).where('id', '=', id).execute()
    const pair = await this.login(user.email, user.password)
    const product = await this.createProduct(pair.access_token)
    return {
      role,
      id,
      ...user,
      token: pair.access_token,
      refreshToken: pair.refresh_token,
      productId: product.id,
      sku: product.sku,
    }
  }

  async setUp() {
    for (const who of ['user', 'admin', 'other'] as const)
      this.accounts[who] = await this.createAccount(who === 'admin' ? 'admin' : 'user')
    // Enough products for a few pages, with equal prices and look-alike names to tie on.
    for (let i = 0; i < 24; i++)
      await this.call('POST', '/product/', {
        token: this.accounts[(['user', 'admin', 'other'] as const)[i % 3]!].token,
        json: {
          product_id: uniqueSku(),
          name: ['Lamp', 'lamp', 'Ünïcode', '😀'][i % 4],
          price: [0, 100, 100, 2 ** 53 - 1][i % 4],
        },
      })
    const { user } = this.accounts
    const revoked = await this.login(user.email, user.password)
    await this.call('POST', '/logout', { token: revoked.access_token })
    const claims = { user_id: user.id, role: 'user', sid: sessionOf(user.token) }
    const sign = (secret: string, expiresAt: number) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject(String(user.id))
        .setJti(randomUUID())
        .setIssuedAt(expiresAt - 900)
        .setExpirationTime(expiresAt)
        .setIssuer(this.ctx.config.jwtIssuer)
        .setAudience(this.ctx.config.jwtAudience)
        .sign(new TextEncoder().encode(secret))
    const now = Math.floor(Date.now() / 1000)
    this.deadTokens = [
      revoked.access_token,
      await sign(this.ctx.config.secretKey, now - 60),
      await sign('another-secret-key-that-is-long-enough-0123', now + 600),
    ]
  }

  /** Puts back whatever the last request broke (deleted, demoted or logged out accounts, deleted products). */
  async ensure() {
    for (const who of ['user', 'admin', 'other'] as const) {
      let account = this.accounts[who]
      const me = await this.call('GET', '/users/me', { token: account.token })
      if (me.status !== 200 || me.body.role !== account.role) {
        account = this.accounts[who] = await this.createAccount(account.role)
        continue
      }
      Object.assign(account, { name: me.body.name, email: me.body.email })
      const product = await this.ctx.app.db
        .selectFrom('products')
        .select(['product_id', 'owner_id'])
        .where('id', '=', account.productId)
        .executeTakeFirst()
      if (product?.owner_id === account.id) account.sku = product.product_id
      else
        Object.assign(
          account,
          await this.createProduct(account.token).then(({ id, sku }) => ({ productId: id, sku })),
        )
    }
  }

  /** The value a Known stands for, for a request made by `actor` (the user when anonymous). */
  async resolve(ref: string, actor: Account, productId: unknown): Promise<string | number> {
    const { user, admin, other } = this.accounts
    switch (ref) {
      case 'self.id':
        return actor.id
      case 'user.id':
      case 'admin.id':
      case 'other.id':
        return this.accounts[ref.split('.')[0] as Who].id
      case 'missing.id':
        return 2_147_483_647
      case 'fresh.user':
        return (await this.call('POST', '/users/', { json: uniqueUser() })).body.id as number
      case 'own.product':
        return actor.productId
      case 'user.product':
        return user.productId
      case 'admin.product':
        return admin.productId
      case 'other.product':
        return other.productId
      case 'fresh.product':
        return (await this.createProduct(actor.token)).id
      case 'own.session':
        return sessionOf(actor.token)
      case 'other.session':
        return sessionOf(other.token)
      case 'fresh.session':
        return sessionOf((await this.login(actor.email, actor.password)).access_token)
      case 'missing.session':
        return randomUUID()
      case 'etag.current': {
        const row = await this.ctx.app.db
          .selectFrom('products')
          .select('version')
          .where(
            'id',
            '=',
            Number.isInteger(productId) && Math.abs(productId as number) < 2 ** 31
              ? (productId as number)
              : 0,
          )
          .executeTakeFirst()
        return `"${row?.version ?? 1}"`
      }
      case 'actor.password':
        return actor.password
      case 'user.refresh':
        return user.refreshToken
      case 'user.usedRefresh':
        return user.usedRefreshToken ?? user.refreshToken
      default: {
        // user.email, other.name, other.sku…
        const [who, field] = ref.split('.') as [Who, keyof Account]
        return this.accounts[who][field] as string | number
      }
    }
  }
}

// ------------------------------------------------------------------ generated requests

type AuthPlan =
  | { kind: 'as'; who: Who; scheme: string }
  | { kind: 'dead'; index: number }
  | { kind: 'raw'; value: string }
  | { kind: 'none' }

type BodyPlan =
  | { kind: 'json' | 'form'; mediaType: string; contentType: string; value: unknown }
  | { kind: 'raw'; contentType: string | undefined; data: string | Uint8Array }

interface RequestPlan {
  auth: AuthPlan
  path: Record<string, unknown>
  /** [name, value] pairs, a raw query string, or the next page of the last list this operation answered. */
  query: [string, unknown][] | string | Known
  headers: Record<string, unknown>
  body: BodyPlan | undefined
  toggleSlash: boolean
}

const ids = (...refs: string[]) => fc.constantFrom(...refs.map((ref) => new Known(ref)))

/** Which rows a path parameter can name, by the resource the path is about. */
function knownPathValues(path: string): fc.Arbitrary<Known> | undefined {
  if (path.startsWith('/users/'))
    return ids('self.id', 'user.id', 'admin.id', 'other.id', 'fresh.user', 'missing.id')
  if (path.startsWith('/product/'))
    return ids('own.product', 'user.product', 'admin.product', 'other.product', 'fresh.product', 'missing.id')
  if (path.startsWith('/sessions/'))
    return ids('own.session', 'other.session', 'fresh.session', 'missing.session')
  return undefined
}

/** Path segments no encoder writes: broken percent-encoding, dot segments, separators, long ones. */
const RAW_SEGMENTS = [
  '%',
  '%FF',
  '%00',
  '%2F',
  '..',
  '%2e%2e',
  '1;a',
  '1%3Fx',
  '%E0%A4%A',
  '%C0%AF',
  '1%20',
  'x'.repeat(150),
  '-1',
  '0',
  '1.5',
  '1e3',
  '0x1F',
  '%u0041',
]

/** Body fields that can name something real, so that valid bodies also reach the success paths. */
const KNOWN_FIELDS: Record<string, string[]> = {
  username: ['user.email', 'user.name'],
  password: ['user.password'],
  current_password: ['actor.password'],
  email: ['user.email', 'other.email'],
  name: ['other.name', 'user.name'],
  refresh_token: ['user.refresh', 'user.usedRefresh'],
  product_id: ['other.sku', 'user.sku'],
}

const RAW_BODIES = [
  ...['', '{', '{"a":', '}', 'null', '[]', '"x"', '0', 'true', '{"a":1,}', "{'a':1}", '\uFEFF{}', 'NaN'],
  ...['{"__proto__":{"role":"admin"}}', '{"constructor":{"prototype":{"role":"admin"}}}', '{"price":1e400}'],
  ...[
    '{"price":1,"price":"x"}',
    '['.repeat(5000),
    `{"name":"${'x'.repeat(70_000)}"}`,
    'username=%&password=%%',
  ],
  ...['a=1&&&=&a', '\u0000', '{"name":"\\ud800"}'],
]
const RAW_CONTENT_TYPES = [
  ...['application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/xml', ''],
  ...['multipart/form-data; boundary=x', 'application/octet-stream', 'application/json; charset=utf-16'],
  ...['application/merge-patch+json', 'APPLICATION/JSON', 'application/json;', undefined],
]

/** Header values as fetch can send them: tab, visible ASCII, space and Latin-1 (no control characters). */
const headerSafe = (text: string) => text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?')

/**
 * Requests for one operation: half of them well formed (a fixture's token, rows that exist, valid
 * parameters and bodies), so that the success paths and their response bodies are reached often;
 * the other half anything goes, each part valid or not.
 */
function planArbitrary(
  arbs: SchemaArbitraries,
  path: string,
  method: string,
  op: Operation,
): fc.Arbitrary<RequestPlan> {
  return fc.oneof(planOf(arbs, path, method, op, true), planOf(arbs, path, method, op, false))
}

function planOf(
  arbs: SchemaArbitraries,
  path: string,
  method: string,
  op: Operation,
  wellFormed: boolean,
): fc.Arbitrary<RequestPlan> {
  const either = (schema: Schema): fc.Arbitrary<unknown> => {
    const bad = wellFormed ? undefined : arbs.invalid(schema)
    return bad ? fc.oneof(arbs.valid(schema), bad) : arbs.valid(schema)
  }
  const parameters = op.parameters ?? []
  const weighted = <T>(...choices: [fc.Arbitrary<T>, number][]) =>
    fc.oneof(
      ...choices.filter(([, weight]) => weight > 0).map(([arbitrary, weight]) => ({ arbitrary, weight })),
    )

  const pathParts: Record<string, fc.Arbitrary<unknown>> = {}
  for (const parameter of parameters.filter((p) => p.in === 'path')) {
    const known = knownPathValues(path)
    pathParts[parameter.name] = known
      ? weighted<unknown>(
          [known, 4],
          [either(parameter.schema), wellFormed ? 0 : 2],
          [fc.constantFrom(...RAW_SEGMENTS).map((raw) => ({ raw })), wellFormed ? 0 : 1],
        )
      : either(parameter.schema)
  }

  const queryParameters = parameters.filter((p) => p.in === 'query')
  const queryEntry = (parameter: Parameter) =>
    fc.oneof(
      either(parameter.schema),
      ...(/(^|_)(user|owner)_id$/.test(parameter.name) ? [ids('user.id', 'other.id', 'missing.id')] : []),
    )
  const unknownParameter = fc.tuple(
    fc.constantFrom('unknown', '__proto__', 'constructor[prototype][x]', 'limit[]', ''),
    fc.string({ maxLength: 5 }),
  )
  const declaredQuery = fc
    .tuple(
      fc.tuple(
        ...queryParameters.map((parameter) => fc.option(queryEntry(parameter), { nil: undefined, freq: 2 })),
      ),
      wellFormed ? fc.constant(null) : fc.option(unknownParameter, { freq: 4 }),
    )
    .map(([values, extra]): [string, unknown][] => {
      const entries = queryParameters
        .map((parameter, index): [string, unknown] => [parameter.name, values[index]])
        .filter(([, value]) => value !== undefined)
      return extra ? [...entries, extra] : entries
    })
  const rawQuery = fc.constantFrom(
    ...['limit=%', 'q=%FF', 'q=%00', '&&&', 'limit', 'limit=', 'sort=price&sort=name', 'limit=1&limit=2'],
  )
  // Following a real next_cursor reaches the keyset queries that random cursors (422) never do.
  const nextPage = fc.constant(new Known('next.page'))
  const isList = queryParameters.some((parameter) => parameter.name === 'cursor')
  const query = weighted<RequestPlan['query']>(
    [declaredQuery, 6],
    [rawQuery, wellFormed ? 0 : 1],
    [nextPage, wellFormed && isList ? 3 : 0],
  )

  const headerParts: Record<string, fc.Arbitrary<unknown>> = {
    'user-agent': fc.option(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 30 }),
        fc.integer({ min: 500, max: 2_000 }).map((n) => 'ü'.repeat(n)),
      ),
      { nil: undefined },
    ),
    'x-request-id': fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.constant('x'.repeat(500))), {
      nil: undefined,
      freq: 4,
    }),
  }
  for (const parameter of parameters.filter((p) => p.in === 'header')) {
    const extra =
      parameter.name === 'if-match'
        ? [ids('etag.current'), fc.constantFrom('*', '"0"', 'W/"1"', '"1", "2"', '""', ',,,')]
        : parameter.name === 'idempotency-key'
          ? [fc.constant('property-test-key')]
          : []
    headerParts[parameter.name] = fc.option(fc.oneof(either(parameter.schema), ...extra), { nil: undefined })
  }
  if (op.responses['304'])
    headerParts['if-none-match'] = fc.option(
      fc.oneof(ids('etag.current'), fc.constantFrom('*', '"0"', 'W/"1"')),
      { nil: undefined },
    )

  const asFixture = fc.record({
    kind: fc.constant('as' as const),
    who: fc.constantFrom<Who>('user', 'admin', 'other'),
    scheme: fc.constantFrom('Bearer', 'Bearer', 'Bearer', 'bearer', 'BEARER '),
  })
  const deadToken = fc.integer({ min: 0, max: 2 }).map((index) => ({ kind: 'dead' as const, index }))
  const rawAuthorization = fc
    .oneof(
      fc.constantFrom(
        ...['', 'Bearer', 'Bearer ', 'Bearer x.y.z', 'Basic dXNlcjpwYXNz'],
        ...['Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.', `Bearer ${'A'.repeat(5_000)}`],
      ),
      fc.string({ maxLength: 40 }),
    )
    .map((value) => ({ kind: 'raw' as const, value }))
  const auth = wellFormed
    ? asFixture
    : weighted<AuthPlan>(
        [asFixture, 8],
        [fc.constant({ kind: 'none' as const }), 2],
        [deadToken, 1],
        [rawAuthorization, 1],
      )

  const bodies: [fc.Arbitrary<BodyPlan | undefined>, number][] = []
  for (const [mediaType, { schema }] of Object.entries(op.requestBody?.content ?? {})) {
    const kind = mediaType === 'application/x-www-form-urlencoded' ? 'form' : 'json'
    const contentTypes =
      kind === 'form'
        ? [mediaType, `${mediaType}; charset=UTF-8`]
        : [mediaType, `${mediaType}; charset=utf-8`]
    const properties = Object.keys((schema.properties ?? {}) as object).filter((key) => key in KNOWN_FIELDS)
    const withKnown = fc
      .tuple(arbs.valid(schema), fc.oneof(fc.constant(properties), fc.subarray(properties)), fc.nat())
      .map(([value, fields, pick]) =>
        fields.reduce((object, field) => {
          const refs = KNOWN_FIELDS[field]!
          return withKey(object, field, new Known(refs[pick % refs.length]!))
        }, value as object),
      )
    const invalid = wellFormed ? undefined : arbs.invalid(schema)
    for (const [values, weight] of [
      [arbs.valid(schema), 3],
      [withKnown, 3],
      [invalid, 4],
    ] as const)
      if (values)
        bodies.push([
          fc.record({
            kind: fc.constant(kind),
            mediaType: fc.constant(mediaType),
            contentType: fc.constantFrom(...contentTypes),
            value: values,
          }),
          weight,
        ])
  }
  const rawBody = fc.record({
    kind: fc.constant('raw' as const),
    contentType: fc.constantFrom(...RAW_CONTENT_TYPES),
    data: fc.oneof(
      fc.constantFrom(...RAW_BODIES),
      fc.constant(Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
    ),
  })
  // fetch sends no body with GET; a well-formed request has the body its operation declares.
  if (method !== 'get' && !wellFormed) bodies.push([rawBody, op.requestBody ? 2 : 1])
  if (method === 'get' || !op.requestBody || !wellFormed)
    bodies.push([fc.constant(undefined), op.requestBody ? 1 : 6])

  return fc.record({
    auth,
    path: fc.record(pathParts),
    query,
    headers: fc.record(headerParts, { requiredKeys: [] }),
    body: weighted(...bodies),
    toggleSlash: fc.boolean(),
  })
}

// ------------------------------------------------------------------ sending and checking

interface Sent {
  method: string
  url: string
  headers: Record<string, string>
  /** The body as text (for messages), and as sent. */
  body: string
  data: string | Uint8Array | undefined
  /** Set when the body's own schema refuses it: the answer must then be a 4xx. */
  refusedBy?: string
}

/** Lone surrogates cannot be percent-encoded; a server would see U+FFFD for them anyway. */
const wellFormed = (text: string) =>
  text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')

/** A generated value as text in a URL or header: strings as they are, everything else as JSON. */
const asText = (value: unknown): string => (typeof value === 'string' ? value : toJsonText(value))

/** The object a form body decodes to, as @fastify/formbody gives it: repeated fields become arrays. */
function decodeForm(text: string): object {
  let object: Record<string, unknown> = {}
  for (const [key, value] of new URLSearchParams(text)) {
    const previous = Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined
    object = withKey(object, key, previous === undefined ? value : [previous, value].flat())
  }
  return object
}

function encodeForm(value: unknown): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return asText(value)
  const form = new URLSearchParams()
  for (const [key, item] of Object.entries(value))
    for (const one of Array.isArray(item) ? item : [item])
      if (one !== undefined) form.append(key, asText(one))
  return form.toString()
}

async function materialize(
  world: World,
  arbs: SchemaArbitraries,
  base: string,
  template: string,
  method: string,
  op: Operation,
  plan: RequestPlan,
): Promise<Sent> {
  const actor = world.accounts[plan.auth.kind === 'as' ? plan.auth.who : 'user']
  const resolve = async (value: unknown, productId?: unknown): Promise<unknown> => {
    if (value instanceof Known) return world.resolve(value.ref, actor, productId)
    if (Array.isArray(value)) return Promise.all(value.map((item) => resolve(item, productId)))
    if (value !== null && typeof value === 'object' && !(value instanceof JsonLiteral)) {
      let object = {}
      for (const [key, item] of Object.entries(value))
        object = withKey(object, key, await resolve(item, productId))
      return object
    }
    return value
  }

  let path = template
  const pathValues: Record<string, unknown> = {}
  for (const [name, planned] of Object.entries(plan.path)) {
    const value = (pathValues[name] = await resolve(planned))
    const segment =
      value !== null && typeof value === 'object' && 'raw' in value
        ? String(value.raw)
        : encodeURIComponent(wellFormed(asText(value)))
    path = path.replace(`{${name}}`, segment)
  }
  if (plan.toggleSlash) path = path.endsWith('/') ? path.slice(0, -1) : `${path}/`
  let query = ''
  if (plan.query instanceof Known) query = world.nextPages.get(template) ?? ''
  else if (typeof plan.query === 'string') query = plan.query
  else {
    const params = new URLSearchParams()
    for (const [name, planned] of plan.query) {
      const value = await resolve(planned)
      for (const one of Array.isArray(value) ? value : [value]) params.append(name, asText(one))
    }
    query = params.toString()
  }

  const headers: Record<string, string> = {}
  if (plan.auth.kind === 'as') headers.authorization = `${plan.auth.scheme} ${actor.token}`
  if (plan.auth.kind === 'dead') headers.authorization = `Bearer ${world.deadTokens[plan.auth.index]}`
  if (plan.auth.kind === 'raw') headers.authorization = headerSafe(plan.auth.value)
  for (const [name, planned] of Object.entries(plan.headers))
    if (planned !== undefined) headers[name] = headerSafe(asText(await resolve(planned, pathValues.id)))

  let body = ''
  let data: string | Uint8Array | undefined
  let refusedBy: string | undefined
  if (plan.body?.kind === 'raw') {
    data = plan.body.data
    body = typeof data === 'string' ? data : Buffer.from(data).toString('latin1')
    if (plan.body.contentType !== undefined) headers['content-type'] = plan.body.contentType
    // Without a Content-Type, fetch would call a string text/plain: bytes go without one.
    else data = new TextEncoder().encode(body)
  } else if (plan.body) {
    const value = await resolve(plan.body.value)
    headers['content-type'] = plan.body.contentType
    body = data = plan.body.kind === 'form' ? encodeForm(value) : toJsonText(value)
    const seen = plan.body.kind === 'form' ? decodeForm(body) : value
    const schema = op.requestBody!.content[plan.body.mediaType]!.schema
    if (!arbs.accepts(schema, seen)) refusedBy = arbs.explain(schema, seen)
  }
  const url = `${base}${path}${query ? `?${query}` : ''}`
  return { method: method.toUpperCase(), url, headers, body, data, refusedBy }
}

interface Received {
  status: number
  headers: Headers
  text: string
}

const LEAKS =
  /SQLITE_|ER_[A-Z_]{3,}|\bsyntax error\b|violates .* constraint|duplicate key|\n\s+at |node_modules|Kysely|TypeError|ReferenceError/

function describeExchange(sent: Sent, received: Received) {
  const headers = [...received.headers].map(([name, value]) => `  ${name}: ${value}`).join('\n')
  return [
    `request: ${sent.method} ${sent.url}`,
    ...Object.entries(sent.headers).map(
      ([name, value]) => `  ${name}: ${value.length > 120 ? `${value.slice(0, 120)}…` : value}`,
    ),
    `  body: ${JSON.stringify(sent.body.length > 500 ? `${sent.body.slice(0, 500)}… (${sent.body.length} characters)` : sent.body)}`,
    ...(sent.refusedBy ? [`  (its schema refuses this body: ${sent.refusedBy})`] : []),
    `response: ${received.status}`,
    headers,
    `  body: ${received.text.slice(0, 2_000)}`,
  ].join('\n')
}

function checkAnswer(arbs: SchemaArbitraries, op: Operation, sent: Sent, received: Received) {
  const fail = (why: string): never => {
    throw new Error(`${why}\n${describeExchange(sent, received)}`)
  }
  const { status } = received
  const mediaType = (received.headers.get('content-type') ?? '').split(';')[0]!.trim()
  if (status >= 500) fail(`a ${status}: the server failed`)
  if (status >= 400) {
    if (mediaType !== 'application/problem+json')
      fail(`an error as ${mediaType || 'no content type'}, not application/problem+json`)
    let problem: Record<string, unknown>
    try {
      problem = JSON.parse(received.text) as Record<string, unknown>
    } catch {
      return fail('an error body that is not JSON')
    }
    if (!arbs.accepts({ $ref: '#/components/schemas/Problem' }, problem))
      fail(`not a Problem: ${arbs.explain({ $ref: '#/components/schemas/Problem' }, problem)}`)
    if (problem.status !== status) fail(`problem.status ${String(problem.status)} is not the HTTP status`)
    if (!problem.title || !problem.detail || !problem.type) fail('a problem without type, title or detail')
    if (LEAKS.test(String(problem.detail)) || LEAKS.test(JSON.stringify(problem.errors ?? [])))
      fail('an error that shows internals')
    if (status === 422 && !(Array.isArray(problem.errors) && problem.errors.length > 0))
      fail('a 422 without the errors list')
    if (status === 401 && !/^Bearer\b/.test(received.headers.get('www-authenticate') ?? ''))
      fail('a 401 without WWW-Authenticate: Bearer')
    if (status === 405 && !received.headers.get('allow')) fail('a 405 without Allow')
    return
  }
  if (sent.refusedBy) fail('a body its schema refuses was accepted')
  const declared = op.responses[String(status)]
  if (!declared)
    fail(`${status} is not a status this operation declares (${Object.keys(op.responses).join(', ')})`)
  const content = declared!.content
  if (status === 204 || status === 304 || !content) {
    if (received.text !== '') fail(`a ${status} with a body`)
    return
  }
  const schema = content[mediaType]?.schema
  if (!schema) fail(`a ${status} as ${mediaType}, which is not declared (${Object.keys(content).join(', ')})`)
  let body: unknown
  try {
    body = JSON.parse(received.text)
  } catch {
    fail('a success body that is not JSON')
  }
  if (!arbs.accepts(schema!, body))
    fail(`the body does not match the declared schema: ${arbs.explain(schema!, body)}`)
}

/** The operation a request for `pathname` reaches: literal paths win over templated ones. */
function operationAt(document: OpenApiDocument, method: string, pathname: string): Operation | undefined {
  const templates = Object.keys(document.paths).sort((a, b) => a.split('{').length - b.split('{').length)
  const template = templates.find((candidate) =>
    new RegExp(`^${candidate.replace(/\{[^}]+\}/g, '[^/]+').replace(/\/$/, '')}/?$`).test(pathname),
  )
  return template === undefined ? undefined : document.paths[template]![method]
}

async function send(sent: Sent): Promise<Received> {
  const response = await fetch(sent.url, {
    method: sent.method,
    headers: sent.headers,
    body: sent.data,
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

/** What a successful request changed in the fixtures that the fixtures must know. */
function remember(world: World, plan: RequestPlan, sent: Sent, received: Received, template: string) {
  if (received.status === 200 && sent.method === 'GET') {
    const next = (JSON.parse(received.text) as { next_cursor?: unknown }).next_cursor
    if (typeof next === 'string') {
      const url = new URL(sent.url)
      url.searchParams.set('cursor', next)
      world.nextPages.set(template, url.search.slice(1))
    }
  }
  if (received.status >= 300 || !sent.body) return
  let body: Record<string, unknown>
  try {
    body = JSON.parse(sent.body) as Record<string, unknown>
  } catch {
    body = Object.fromEntries(new URLSearchParams(sent.body))
  }
  const actor = world.accounts[plan.auth.kind === 'as' ? plan.auth.who : 'user']
  if (template === '/users/me/password' && typeof body.new_password === 'string')
    actor.password = body.new_password
  const user = world.accounts.user
  if (template === '/token/refresh' && body.refresh_token === user.refreshToken) {
    const pair = JSON.parse(received.text) as { access_token: string; refresh_token: string }
    Object.assign(user, {
      usedRefreshToken: user.refreshToken,
      refreshToken: pair.refresh_token,
      token: pair.access_token,
    })
  }
}

// ------------------------------------------------------------------ the tests

test('the schema translator: valid values pass Ajv, invalid ones fail it, for every schema of the document', async () => {
  const app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
  await app.ready()
  const document = app.swagger() as unknown as OpenApiDocument
  await app.close()
  // The keywords the document does not use yet, so that the translator's claims are checked too.
  const extra: Schema = {
    type: 'object',
    required: ['kind', 'size'],
    properties: {
      kind: { const: 'box' },
      size: { type: 'number', exclusiveMinimum: 0, maximum: 10 },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, minItems: 1, maxItems: 3 },
      note: { type: 'string', nullable: true, maxLength: 5 },
      either: {
        oneOf: [
          { type: 'integer', minimum: 5 },
          { type: 'string', format: 'date-time' },
        ],
      },
    },
    additionalProperties: false,
  }
  const arbs = schemaArbitraries({
    ...document,
    components: {
      ...(document as { components?: object }).components,
      schemas: {
        ...((document as { components?: { schemas?: object } }).components?.schemas ?? {}),
        Extra: extra,
      },
    },
  })
  const schemas: [string, Schema][] = [['Extra', { $ref: '#/components/schemas/Extra' }]]
  for (const [path, operations] of Object.entries(document.paths))
    for (const [method, op] of Object.entries(operations)) {
      for (const parameter of op.parameters ?? [])
        schemas.push([`${method} ${path} ${parameter.name}`, parameter.schema])
      for (const [type, { schema }] of Object.entries(op.requestBody?.content ?? {}))
        schemas.push([`${method} ${path} body ${type}`, schema])
      for (const [status, response] of Object.entries(op.responses))
        for (const [type, { schema }] of Object.entries(response.content ?? {}))
          schemas.push([`${method} ${path} ${status} ${type}`, schema])
    }
  for (const [where, schema] of schemas) {
    fc.assert(
      fc.property(arbs.valid(schema), (value) => {
        assert.ok(
          arbs.accepts(schema, value),
          `${where}: valid() made ${toJsonText(value)}: ${arbs.explain(schema, value)}`,
        )
      }),
      { numRuns: 100 },
    )
    const invalid = arbs.invalid(schema)
    if (invalid)
      fc.assert(
        fc.property(invalid, (value) => {
          assert.ok(!arbs.accepts(schema, value), `${where}: invalid() made the valid ${toJsonText(value)}`)
        }),
        { numRuns: 50 },
      )
  }
})

describeEachEngine(
  'generated requests to every operation of /openapi.json',
  (ctx) => {
    let base: string
    let document: OpenApiDocument
    let arbs: SchemaArbitraries
    let world: World

    before(async () => {
      base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
      document = (await (await fetch(`${base}/openapi.json`)).json()) as OpenApiDocument
      arbs = schemaArbitraries(document)
      world = new World(base, ctx)
      await world.setUp()
    })

    test('never a 5xx; errors are problem+json; successes are declared and match their schemas', async (t) => {
      const summary: string[] = []
      const started = Date.now()
      let requests = 0
      for (const [template, operations] of Object.entries(document.paths))
        for (const [method, op] of Object.entries(operations)) {
          const name = `${method.toUpperCase()} ${template}`
          if (ONLY && !name.includes(ONLY)) continue
          const statuses = new Map<number, number>()
          await t.test(name, async () => {
            const opStarted = Date.now()
            await fc.assert(
              fc.asyncProperty(planArbitrary(arbs, template, method, op), async (plan) => {
                const sent = await materialize(world, arbs, base, template, method, op, plan)
                const received = await send(sent)
                statuses.set(received.status, (statuses.get(received.status) ?? 0) + 1)
                requests += 1
                try {
                  // An empty or dot segment can make the URL another operation's (or none's).
                  const reached = operationAt(document, method, new URL(sent.url).pathname)
                  if (reached === op) checkAnswer(arbs, op, sent, received)
                  else
                    checkAnswer(
                      arbs,
                      reached ?? { responses: {} },
                      { ...sent, refusedBy: undefined },
                      received,
                    )
                  remember(world, plan, sent, received, template)
                } finally {
                  if (method !== 'get') await world.ensure()
                }
              }),
              { numRuns: RUNS, seed: SEED, path: process.env.FC_PATH, endOnFailure: true },
            )
            const counts = [...statuses]
              .sort(([a], [b]) => a - b)
              .map(([status, count]) => `${status}×${count}`)
            summary.push(`${name}: ${counts.join(' ')} (${Date.now() - opStarted} ms)`)
          })
        }
      for (const line of summary) t.diagnostic(line)
      t.diagnostic(`${requests} generated requests in ${Math.round((Date.now() - started) / 1000)} s`)
    })
  },
  { env: REDIS_ENV },
)
