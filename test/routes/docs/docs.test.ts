import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { openDatabase } from '../../../src/db/open.js'
import { parseDatabaseUrl } from '../../../src/db/target.js'
import { describeEachEngine, testConfig } from '../../support/app.js'

type Json = Record<string, unknown>
interface Operation {
  security?: Record<string, string[]>[]
  requestBody?: { content?: Record<string, unknown> }
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>
}
interface OpenApiDocument {
  openapi: string
  paths: Record<string, Record<string, Operation>>
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, Json> }
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

/** The routes of the seed README and of the operations section, as the OpenAPI document names them. */
const EXPECTED_OPERATIONS: [string, string, 'public' | 'protected'][] = [
  ['post', '/login', 'public'],
  ['get', '/current-user', 'protected'],
  ['post', '/users/', 'public'],
  ['get', '/users/', 'protected'],
  ['get', '/users/me', 'protected'],
  ['get', '/users/{id}', 'protected'],
  ['patch', '/users/{id}', 'protected'],
  ['delete', '/users/{id}', 'protected'],
  ['post', '/product/', 'protected'],
  ['get', '/product/', 'protected'],
  ['get', '/product/{id}', 'protected'],
  ['put', '/product/{id}', 'protected'],
  ['patch', '/product/{id}', 'protected'],
  ['delete', '/product/{id}', 'protected'],
  ['post', '/password-recovery', 'public'],
  ['post', '/reset-password', 'public'],
  ['post', '/verify-email', 'public'],
  ['post', '/verify-email/resend', 'protected'],
  ['get', '/audit-events', 'protected'],
  ['get', '/healthz', 'public'],
  ['get', '/readyz', 'public'],
]

/** Routes that serve the documentation itself (or metrics to a scraper), not the API. */
const NOT_API = /^\/(docs|redoc|openapi\.json|metrics)\b/

/**
 * The pages for people, hidden from the API docs: those emailed links open, with their scripts,
 * the account page, and the root's page of links with the tab's icon.
 */
const LINK_PAGES = new Set([
  'get /',
  'get /favicon.ico',
  'get /reset-password',
  'get /reset-password.js',
  'get /verify-email',
  'get /verify-email.js',
  'get /account',
  'get /account.js',
  'get /vendor/simplewebauthn-browser.js',
])

/** '/users/' and '/users' are the same route (both are served); '{id}' and ':id' the same parameter. */
const normalizePath = (p: string) => p.replace(/\{(\w+)\}/g, ':$1').replace(/(.)\/$/, '$1')

function operations(doc: OpenApiDocument) {
  return Object.entries(doc.paths).flatMap(([p, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, operation]) => ({ method, path: p, operation })),
  )
}

/** With CORS_ORIGINS set, @fastify/cors answers the preflight OPTIONS of every path: CORS, not an API operation. */
const CORS_PREFLIGHT = 'options *'

/**
 * The routes the router serves, read from Fastify's route tree (`printRoutes`): each line is a
 * path segment indented four characters per level, followed by its methods when it has any. A
 * line that does not read so fails the test, rather than hiding the routes beneath it. Fastify
 * answers HEAD on every GET route by itself: that HEAD is the GET's, and is left out; a HEAD route
 * of its own would be listed.
 */
function servedRoutes(app: FastifyInstance): { method: string; path: string }[] {
  const routes: { method: string; path: string }[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    if (line.trim() === '') continue
    const match = /^((?:[│ ] {3})*)(?:[├└]── )?(\S+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    assert.ok(match, `a line of the route tree could not be read: ${JSON.stringify(line)}`)
    const depth = match[1]!.length / 4
    stack.length = depth
    stack.push(match[2]!)
    const methods = (match[3] ?? '').split(',').map((m) => m.trim())
    for (const method of methods)
      if (method && !(method === 'HEAD' && methods.includes('GET')))
        routes.push({ method: method.toLowerCase(), path: stack.join('') })
  }
  return routes
}

/**
 * Both ways: every route the server serves is documented (but for the docs themselves, the pages
 * that emailed links open, and the CORS preflight), and every documented operation is served.
 */
function assertServedMatchesDocumented(app: FastifyInstance, doc: OpenApiDocument) {
  const documented = new Set(operations(doc).map((op) => `${op.method} ${normalizePath(op.path)}`))
  const served = servedRoutes(app)
  const servedNames = new Set(served.map((route) => `${route.method} ${route.path}`))
  // The route tree was read: the known routes are all in it, and so are the exempted pages.
  for (const [method, p] of EXPECTED_OPERATIONS)
    assert.ok(servedNames.has(`${method} ${normalizePath(p)}`), `${method} ${p} not found in the route tree`)
  for (const page of LINK_PAGES) assert.ok(servedNames.has(page), `${page} not found in the route tree`)
  for (const route of served) {
    const name = `${route.method} ${route.path}`
    if (NOT_API.test(route.path) || LINK_PAGES.has(name) || name === CORS_PREFLIGHT) continue
    assert.ok(documented.has(name), `${route.method} ${route.path} is undocumented`)
  }
  for (const { method, path: p } of operations(doc))
    assert.ok(
      app.hasRoute({ method: method.toUpperCase() as 'GET', url: normalizePath(p) }),
      `${method} ${p} is documented but not served`,
    )
}

/** Every value reachable from `schema`, following `$ref`s into the document's components. */
function* walkSchema(schema: unknown, doc: OpenApiDocument, seen = new Set<unknown>()): Generator<Json> {
  if (schema === null || typeof schema !== 'object' || seen.has(schema)) return
  seen.add(schema)
  if (Array.isArray(schema)) {
    for (const item of schema) yield* walkSchema(item, doc, seen)
    return
  }
  const node = schema as Json
  yield node
  if (typeof node.$ref === 'string') {
    const name = /^#\/components\/schemas\/(.+)$/.exec(node.$ref)?.[1]
    assert.ok(name, `unsupported $ref ${node.$ref}`)
    const target = doc.components?.schemas?.[decodeURIComponent(name)]
    assert.ok(target, `$ref ${node.$ref} does not resolve`)
    yield* walkSchema(target, doc, seen)
  }
  for (const value of Object.values(node)) yield* walkSchema(value, doc, seen)
}

/** The src/href URLs of the script, link and img elements of an HTML page. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map(
    (match) => match[1]!,
  )
}

function assertLocal(url: string, base: string) {
  const resolved = new URL(url, base)
  assert.equal(resolved.origin, new URL(base).origin, `${url} is not served by the server itself`)
  return resolved
}

describeEachEngine('documentation and health endpoints', (ctx) => {
  let doc: OpenApiDocument
  let base: string

  before(async () => {
    base = await ctx.app.listen({ host: '127.0.0.1', port: 0 })
    const response = await ctx.app.inject('/openapi.json')
    assert.equal(response.statusCode, 200)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    doc = response.json<OpenApiDocument>()
  })

  test('GET /openapi.json is OpenAPI 3.1 with the OAuth2 password flow on /login', () => {
    assert.equal(doc.openapi, '3.1.0')
    const schemes = Object.values(doc.components?.securitySchemes ?? {})
    const oauth2 = schemes.find((scheme) => scheme.type === 'oauth2') as
      { flows?: { password?: { tokenUrl?: string } } } | undefined
    assert.ok(oauth2, 'an oauth2 security scheme is declared')
    assert.equal(oauth2.flows?.password?.tokenUrl, '/login')
  })

  test('every route of the README is in the document, and declares security when it needs a token', () => {
    for (const [method, p, access] of EXPECTED_OPERATIONS) {
      const operation = doc.paths[p]?.[method]
      assert.ok(operation, `${method.toUpperCase()} ${p} is missing from the document`)
      if (access === 'protected') assert.ok(operation.security?.length, `${method} ${p} declares no security`)
      else assert.ok(!operation.security?.length, `${method} ${p} is public but declares security`)
    }
  })

  test('every security requirement names a declared scheme', () => {
    const declared = Object.keys(doc.components?.securitySchemes ?? {})
    for (const { method, path: p, operation } of operations(doc))
      for (const requirement of operation.security ?? [])
        for (const name of Object.keys(requirement))
          assert.ok(declared.includes(name), `${method} ${p} requires unknown scheme ${name}`)
  })

  test('every API route the server serves is documented, and every documented operation is served', () => {
    assertServedMatchesDocumented(ctx.app, doc)
  })

  test('an operation needs a token exactly when it declares security', async () => {
    for (const { method, path: p, operation } of operations(doc)) {
      const response = await ctx.app.inject({
        method: method.toUpperCase() as 'GET',
        url: p.replace(/\{\w+\}/g, '1'),
        ...(['post', 'put', 'patch'].includes(method) ? { payload: {} } : {}),
      })
      const declared = Boolean(operation.security?.length)
      assert.equal(
        response.statusCode === 401,
        declared,
        `${method} ${p}: anonymous request answered ${response.statusCode}, security declared: ${declared}`,
      )
    }
  })

  test('POST /login accepts application/x-www-form-urlencoded with username and password', () => {
    const content = doc.paths['/login']?.post?.requestBody?.content ?? {}
    const form = content['application/x-www-form-urlencoded'] as { schema?: unknown } | undefined
    assert.ok(form, 'the form encoding is offered')
    const fields = new Set<string>()
    for (const node of walkSchema(form.schema, doc))
      if (node.properties && typeof node.properties === 'object')
        for (const name of Object.keys(node.properties)) fields.add(name)
    assert.ok(fields.has('username') && fields.has('password'), `form fields: ${[...fields].join(', ')}`)
  })

  test('no response schema has a password or a password hash', () => {
    let userSchemas = 0
    for (const { method, path: p, operation } of operations(doc)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        for (const media of Object.values(response.content ?? {})) {
          for (const node of walkSchema(media.schema, doc)) {
            const properties = Object.keys((node.properties as Json | undefined) ?? {})
            if (properties.includes('email') && properties.includes('role')) userSchemas += 1
            const leaked = properties.filter((name) => /password|_hash$|^hash$/i.test(name))
            assert.deepEqual(leaked, [], `${method} ${p} → ${status} exposes ${leaked.join(', ')}`)
          }
        }
      }
    }
    // The user schemas were really inspected: registration, /current-user, /users/me, /users/{id}, …
    assert.ok(userSchemas >= 4, `only ${userSchemas} user response schemas found`)
  })

  test('GET /docs serves Swagger UI from local assets, pointed at the local spec', async () => {
    const page = await fetch(`${base}/docs`, { redirect: 'follow' })
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const html = await page.text()
    assert.match(html, /swagger-ui/i)
    const urls = assetUrls(html)
    assert.ok(
      urls.some((u) => /swagger-ui-bundle\.js/.test(u)),
      'the Swagger UI bundle is loaded',
    )
    assert.ok(
      urls.some((u) => /\.css/.test(u)),
      'the Swagger UI stylesheet is loaded',
    )
    assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']\/\//i, 'no protocol-relative URLs')

    let initializer: string | undefined
    for (const url of urls) {
      const asset = await fetch(assertLocal(url, page.url))
      assert.equal(asset.status, 200, `${url} answers ${asset.status}`)
      const body = await asset.text()
      if (/SwaggerUIBundle\s*\(/.test(body) && /\burl\s*:/.test(body) && !/swagger-ui-bundle/.test(url))
        initializer = body
    }
    assert.ok(initializer, 'a script initializes Swagger UI')
    assert.doesNotMatch(initializer, /validator\.swagger\.io/)
    assert.match(initializer, /["']?validatorUrl["']?\s*:\s*null/, 'no online validator')

    // The spec URL, resolved as Swagger UI resolves it (relative to the page's folder).
    const spec = /\burl\s*:\s*(?:resolveUrl\()?\s*["']([^"']+)["']/.exec(initializer)?.[1]
    assert.ok(spec, 'the initializer names a spec URL')
    const folder = page.url.endsWith('/') ? page.url : `${page.url}/`
    const specUrl = assertLocal(spec, spec.startsWith('.') ? folder : page.url)
    const served = await fetch(specUrl)
    assert.equal(served.status, 200, `${specUrl.href} answers ${served.status}`)
    assert.deepEqual(await served.json(), doc)
  })

  test('GET /redoc serves ReDoc from the local bundle, reading /openapi.json', async () => {
    const page = await fetch(`${base}/redoc`, { redirect: 'follow' })
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const html = await page.text()
    const urls = assetUrls(html)
    assert.ok(urls.includes('/redoc/redoc.standalone.js'), `scripts: ${urls.join(', ')}`)

    let scripts = html
    for (const url of urls) {
      const asset = await fetch(assertLocal(url, page.url))
      assert.equal(asset.status, 200, `${url} answers ${asset.status}`)
      const body = await asset.text()
      if (url.endsWith('.js')) assert.match(asset.headers.get('content-type') ?? '', /javascript/)
      if (url === '/redoc/redoc.standalone.js')
        assert.ok(body.length > 500_000, `the ReDoc bundle is only ${body.length} bytes`)
      else scripts += body
    }
    assert.match(scripts, /Redoc\.init\(\s*["']\/openapi\.json["']/, 'ReDoc is pointed at /openapi.json')
  })

  test('GET /healthz → 200 {status: "ok"}', async () => {
    const response = await ctx.app.inject('/healthz')
    assert.equal(response.statusCode, 200)
    assert.deepEqual(response.json(), { status: 'ok' })
  })

  test('GET /readyz → 200 {status: "ok"} when the database answers', async () => {
    const response = await ctx.app.inject('/readyz')
    assert.equal(response.statusCode, 200)
    assert.deepEqual(response.json(), { status: 'ok' })
  })
})

describe('routes and documentation with every optional route turned on', () => {
  // CORS_ORIGINS adds the preflight (OPTIONS on every path), METRICS_TOKEN adds /metrics, the
  // rate limits the 429s: the engine tests above build the app without them.
  let app: FastifyInstance
  let doc: OpenApiDocument

  before(async () => {
    app = await buildApp(
      testConfig({
        DATABASE_URL: 'sqlite::memory:',
        CORS_ORIGINS: 'https://app.example.test',
        METRICS_TOKEN: 'metrics-token-0123456789abcdef',
        // The limits declare the 429 every route may answer.
        RATE_LIMIT_ENABLED: 'true',
      }),
      { logger: false },
    )
    await app.ready()
    doc = (await app.inject('/openapi.json')).json<OpenApiDocument>()
  })
  after(async () => {
    await app?.close()
  })

  test('the served routes and the documented operations still match, the CORS preflight and /metrics aside', () => {
    const served = new Set(servedRoutes(app).map((route) => `${route.method} ${route.path}`))
    assert.ok(served.has(CORS_PREFLIGHT), 'the CORS preflight route is served')
    assert.ok(served.has('get /metrics'), '/metrics is served')
    assertServedMatchesDocumented(app, doc)
  })

  test('every response says what it is, and each error status shows an example of its own', () => {
    const examples = new Map<number, string>()
    for (const [p, pathItem] of Object.entries(doc.paths))
      for (const [method, operation] of Object.entries(pathItem as Record<string, Json>)) {
        const responses = (operation as { responses?: Record<string, Json> }).responses ?? {}
        for (const [status, response] of Object.entries(responses)) {
          const where = `${method.toUpperCase()} ${p} ${status}`
          assert.notEqual(response.description, 'Default Response', where)
          if (Number(status) < 400) continue
          const media = (response.content as Record<string, Json>)['application/problem+json']!
          const example = media.example as { status?: number; detail?: string } | undefined
          if (example) {
            assert.equal(example.status, Number(status), `${where}: its example is of its own status`)
            examples.set(Number(status), example.detail!)
          } else {
            // A problem of its own shape (the login's 403 with mfa_token): its fields carry the examples.
            const statusField = (media.schema as { properties?: Record<string, Json> }).properties?.status
            const shown = statusField?.example ?? (statusField?.examples as unknown[] | undefined)?.[0]
            assert.equal(shown, Number(status), `${where}: its example is of its own status`)
          }
        }
      }
    // The statuses do not share one example (as they all showed the 422 once).
    assert.equal(new Set(examples.values()).size, examples.size, [...examples].join('\n'))
    for (const status of [401, 403, 404, 409, 413, 415, 429])
      assert.ok(examples.has(status), `${status} is documented`)
  })

  test('every documented operation is served with and without a trailing slash', async () => {
    for (const { method, path: p } of operations(doc)) {
      const bare = p.replace(/\{\w+\}/g, '1').replace(/(.)\/$/, '$1')
      for (const url of [bare, `${bare}/`]) {
        // Anonymous and with an empty body: refused (401, 422) or answered, or a 404 of the route
        // itself (no identity provider "1"); the router's own 404 ("There is no route") or a 405
        // can only mean that it has no such route.
        const response = await app.inject({
          method: method.toUpperCase() as 'GET',
          url,
          ...(['post', 'put', 'patch'].includes(method) ? { payload: {} } : {}),
        })
        const unrouted =
          response.statusCode === 405 ||
          (response.statusCode === 404 &&
            response.json<{ detail: string }>().detail.startsWith('There is no route'))
        assert.ok(
          !unrouted,
          `${method.toUpperCase()} ${url} (documented as ${p}) answered ${response.statusCode}: ${response.body}`,
        )
      }
    }
  })
})

describe('readiness when the database is gone', () => {
  let app: FastifyInstance
  const database = openDatabase(parseDatabaseUrl('sqlite::memory:'))

  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false, database })
    await app.ready()
    await database.db.destroy()
  })
  after(async () => {
    await app?.close()
  })

  test('GET /readyz → 503 problem+json with Retry-After, while /healthz stays 200', async () => {
    const ready = await app.inject('/readyz')
    assert.equal(ready.statusCode, 503)
    assert.match(String(ready.headers['content-type']), /^application\/problem\+json/)
    assert.ok(ready.headers['retry-after'], 'Retry-After is set')
    assert.equal(ready.json<{ status: number }>().status, 503)

    const alive = await app.inject('/healthz')
    assert.equal(alive.statusCode, 200)
  })
})
