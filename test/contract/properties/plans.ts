/**
 * Generated requests: for one operation, plans of requests (who sends them, which path, query,
 * headers and body) that name the world's rows through Known references, resolved when sent.
 */
import fc from 'fast-check'
import { withKey, type Schema, type SchemaArbitraries } from '../../support/schema-arbitraries.js'
import { Known, type Operation, type Parameter, type Who } from './world.js'

export type AuthPlan =
  | { kind: 'as'; who: Who; scheme: string }
  | { kind: 'dead'; index: number }
  | { kind: 'raw'; value: string }
  | { kind: 'none' }

export type BodyPlan =
  | { kind: 'json' | 'form'; mediaType: string; contentType: string; value: unknown }
  | { kind: 'raw'; contentType: string | undefined; data: string | Uint8Array }

export interface RequestPlan {
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
export const headerSafe = (text: string) => text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?')

/**
 * Requests for one operation: half of them well formed (a fixture's token, rows that exist, valid
 * parameters and bodies), so that the success paths and their response bodies are reached often;
 * the other half anything goes, each part valid or not.
 */
export function planArbitrary(
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
