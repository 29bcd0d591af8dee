/**
 * Sending and checking: a plan made into a real request, sent over HTTP, and its answer held to
 * the properties (no 5xx, problem+json errors, declared successes matching their schemas).
 */
import { JsonLiteral, toJsonText, withKey, type SchemaArbitraries } from '../../support/schema-arbitraries.js'
import { headerSafe, type RequestPlan } from './plans.js'
import { Known, type OpenApiDocument, type Operation, type World } from './world.js'

export interface Sent {
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

export async function materialize(
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

export interface Received {
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

export function checkAnswer(arbs: SchemaArbitraries, op: Operation, sent: Sent, received: Received) {
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
  // A dot segment ('..', '%2e%2e') is resolved by the client before sending (WHATWG URL, as
  // browsers and curl do): the request reached another path, whose answers are not this
  // operation's (GET /users/.. is GET /). The checks above hold for every path; these do not.
  const written = sent.url.replace(/^[a-z]+:\/\/[^/]+/, '').split('?')[0]
  if (new URL(sent.url).pathname !== written) return
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
export function operationAt(
  document: OpenApiDocument,
  method: string,
  pathname: string,
): Operation | undefined {
  const templates = Object.keys(document.paths).sort((a, b) => a.split('{').length - b.split('{').length)
  const template = templates.find((candidate) =>
    new RegExp(`^${candidate.replace(/\{[^}]+\}/g, '[^/]+').replace(/\/$/, '')}/?$`).test(pathname),
  )
  return template === undefined ? undefined : document.paths[template]![method]
}

export async function send(sent: Sent): Promise<Received> {
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
export function remember(world: World, plan: RequestPlan, sent: Sent, received: Received, template: string) {
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
