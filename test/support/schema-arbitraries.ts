/**
 * JSON Schema → fast-check arbitraries, for the schema shapes our OpenAPI document uses (JSON
 * Schema 2020-12, as OpenAPI 3.1 writes it, plus OpenAPI 3.0's `nullable`).
 *
 * - `valid(schema)` makes values the schema accepts. It does not consult a validator: the
 *   translator's own test checks every value against Ajv, so a mistake here shows up there.
 * - `invalid(schema)` makes deliberate violations (wrong types, missing and unknown fields,
 *   out-of-range and non-finite numbers, bad lengths, patterns and formats, hostile text, deep
 *   nesting). A mutation can happen to be valid (a "wrong" key that is declared after all), so
 *   these values are passed through Ajv and only real violations are kept.
 *
 * "Valid" is judged on the wire: values are compared after `toJsonText` and `JSON.parse`, which is
 * what a server sees (so `-0` is `0`, and the literal `1e400` is `Infinity`).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import fc from 'fast-check'

export type Schema = { [keyword: string]: unknown }

/** A number written into JSON text exactly as given (`-0`, `1e400`, `1.0`): JSON.stringify cannot. */
export class JsonLiteral {
  constructor(readonly text: string) {}
  /** How fast-check prints it in a counterexample (deep nestings are long). */
  toString() {
    return this.text.length > 60 ? `${this.text.slice(0, 30)}…(${this.text.length} characters)` : this.text
  }
}

/** JSON text of a generated value: JsonLiteral as written, own keys only (`__proto__` included). */
export function toJsonText(value: unknown): string {
  if (value instanceof JsonLiteral) return value.text
  if (Array.isArray(value)) return `[${value.map((item) => toJsonText(item ?? null)).join(',')}]`
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .map(([key, item]) => `${JSON.stringify(key)}:${toJsonText(item)}`)
      .join(',')}}`
  return JSON.stringify(value) ?? 'null'
}

/** The value as a server parses it from `toJsonText`. */
export const onTheWire = (value: unknown): unknown => JSON.parse(toJsonText(value))

/** An object with one more own, enumerable key: works for `__proto__` too. */
export function withKey(object: object, key: string, value: unknown): Record<string, unknown> {
  const copy = { ...object } as Record<string, unknown>
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true })
  return copy
}

// Keywords that only describe; everything else must be understood, or the translator refuses.
const ANNOTATIONS = new Set(['description', 'examples', 'example', 'title', 'default', '$id', 'deprecated'])
const CONSTRAINTS = new Set([
  ...['$ref', 'type', 'enum', 'const', 'anyOf', 'oneOf', 'nullable', 'format'],
  ...['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  ...['items', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern'],
  ...['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
])
const FORMATS = ['email', 'date-time', 'uuid']

/** Text that trips up databases, logs, parsers and collations: used on both sides. */
const HOSTILE_TEXT = [
  ...["'; DROP TABLE users; --", '" OR 1=1 --', '%', '_', '\\', '\\\\x00', '%00', '../../etc/passwd'],
  ...['<script>alert(1)</script>', '${7*7}', '{{7*7}}', 'null', 'NaN', '-0', '1e400', 'undefined'],
  ...['__proto__', 'constructor', 'Ünïcödé', 'İı', 'ß', 'ﬃ', 'ǅ', 'Σσς', 'ｆｕｌｌ', 'e\u0301', '\u00e9'],
  ...['😀', '👩‍👩‍👧', '𝔘𝔫𝔦', '\u202Eevil', '\u200B', '\uFEFFbom', '\u00A0nbsp', '中文', 'עברית', 'a'],
  ...['\u0000', 'a\u0000b', '\u0007', '\u001b[31mred', 'line\nbreak', 'cr\rlf', '\ttab', ' lead', 'trail '],
  ...['\uD800', 'x\uDC00y', '\uDBFF\uDFFF', '\uDFFF\uD800'],
]

const TRICKY_FORMATTED: Record<string, string[]> = {
  email: [
    ...['a@b.co', 'A.B+tag@Example.COM', "o'hara@example.com", 'x@xn--80ak6aa92e.com', 'no-at-sign'],
    ...['@example.com', 'a@', 'a@b', 'a b@example.com', 'a@exa mple.com', 'ü@example.com', 'a@ex_ample.com'],
    ...['a@example.com\n', ' a@example.com', '"q"@example.com', 'a@[127.0.0.1]', 'a..b@example.com'],
    `${'l'.repeat(64)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(57)}.com`,
  ],
  'date-time': [
    ...['0001-01-01T00:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z'],
    ...[
      '2026-01-31t12:00:00z',
      '2026-01-31 12:00:00Z',
      '2026-01-31T12:00:00+14:00',
      '2026-01-31T12:00:00-12:59',
    ],
    ...[
      '2016-12-31T23:59:60Z',
      '2026-13-01T00:00:00Z',
      '2026-02-30T12:00:00Z',
      '2026-01-31',
      '2026-01-31T25:00:00Z',
    ],
    ...['2026-01-31T12:00:00', '+275760-09-13T00:00:00.000Z', '0000-01-01T00:00:00Z', 'yesterday', '0'],
  ],
  uuid: [
    ...['00000000-0000-0000-0000-000000000000', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'],
    ...['urn:uuid:123e4567-e89b-12d3-a456-426614174000', '{123e4567-e89b-12d3-a456-426614174000}'],
    ...['123e4567e89b12d3a456426614174000', '123e4567-e89b-12d3-a456-42661417400g', 'not-a-uuid'],
  ],
}

/** JSON text of arrays or objects nested `depth` levels deep (as text: deeper than stacks go). */
const nested = (depth: number, asObject: boolean) =>
  new JsonLiteral(
    asObject ? `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}` : `${'['.repeat(depth)}0${']'.repeat(depth)}`,
  )

/** Values of every JSON type, with the numbers and strings that break naive code. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, 1, -1, 0.5, 1e308, -1e308, 2 ** 53 + 2, -(2 ** 63)),
  fc.constantFrom(
    ...['1e400', '-1e400', '-0', '1.0', '1e2', '123456789012345678901234567890'].map(
      (text) => new JsonLiteral(text),
    ),
  ),
  fc.constantFrom<unknown>('', '1', 'NaN', '-0', 'Infinity', '0x10', 'true', 'null', ' 1', '[]', '{}'),
  fc.constantFrom(...HOSTILE_TEXT),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom<unknown>([], {}, [null], { '': null }, [[[]]]),
  fc
    .tuple(fc.integer({ min: 10, max: 5_000 }), fc.boolean())
    .map(([depth, asObject]) => nested(depth, asObject)),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
)

const UNKNOWN_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  'id',
  'password_hash',
  'owner_id',
  'role',
  'is_admin',
  'a.b',
  'a[b]',
]

const codePoints = (text: string) => [...text].length

export interface SchemaArbitraries {
  valid(schema: Schema): fc.Arbitrary<unknown>
  /** Values the schema refuses; undefined when it accepts everything. */
  invalid(schema: Schema): fc.Arbitrary<unknown> | undefined
  /** Whether the schema accepts the value as it arrives over the wire. */
  accepts(schema: Schema, value: unknown): boolean
  /** Ajv's complaint about the value, for failure messages. */
  explain(schema: Schema, value: unknown): string
}

/**
 * Arbitraries for the schemas of `document` (an OpenAPI 3.1 document): `$ref`s point into it,
 * as `#/components/schemas/Name`.
 */
export function schemaArbitraries(document: object): SchemaArbitraries {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true })
  addFormats.default(ajv)
  // Pieces of the document are compiled on their own: their `#/…` references name the document.
  ajv.addSchema(document as Schema, 'openapi.json')
  const validators = new WeakMap<Schema, ValidateFunction>()
  const absoluteRefs = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(absoluteRefs)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value).map(([key, item]) => [
              key,
              key === '$ref' && typeof item === 'string' && item.startsWith('#')
                ? `openapi.json${item}`
                : absoluteRefs(item),
            ]),
          )
        : value
  function validator(schema: Schema): ValidateFunction {
    let validate = validators.get(schema)
    if (!validate) {
      validate = ajv.compile(absoluteRefs(schema) as Schema)
      validators.set(schema, validate)
    }
    return validate
  }
  const accepts = (schema: Schema, value: unknown) => validator(schema)(onTheWire(value)) === true
  const explain = (schema: Schema, value: unknown) => {
    const validate = validator(schema)
    return validate(onTheWire(value)) ? 'valid' : ajv.errorsText(validate.errors)
  }

  function resolve(schema: Schema): Schema {
    const ref = schema.$ref
    if (typeof ref !== 'string') return schema
    if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`)
    let target: unknown = document
    for (const part of ref.slice(2).split('/'))
      target = (target as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')]
    if (!target) throw new Error(`$ref ${ref} names nothing in the document`)
    return resolve(target as Schema)
  }

  function check(schema: Schema) {
    for (const keyword of Object.keys(schema))
      if (!CONSTRAINTS.has(keyword) && !ANNOTATIONS.has(keyword))
        throw new Error(`the schema translator does not know the keyword "${keyword}"`)
    if (typeof schema.format === 'string' && !FORMATS.includes(schema.format))
      throw new Error(`the schema translator does not know the format "${schema.format}"`)
  }

  /** A generator kept only when a fixed-seed sample shows it mostly passes `keep` (else the filter would spin). */
  function ifMostlyPasses<T>(arbitrary: fc.Arbitrary<T>, keep: (value: T) => boolean) {
    const sample = fc.sample(arbitrary, { numRuns: 100, seed: 7 })
    return sample.filter(keep).length >= 30 ? [arbitrary.filter(keep)] : []
  }

  function types(schema: Schema): string[] | undefined {
    const type = schema.type
    if (type === undefined) return undefined
    const list = Array.isArray(type) ? (type as string[]) : [type as string]
    return schema.nullable === true ? [...list, 'null'] : list
  }

  function validString(schema: Schema): fc.Arbitrary<string> {
    const minLength = (schema.minLength as number | undefined) ?? 0
    const maxLength = (schema.maxLength as number | undefined) ?? 10_000
    const pattern = typeof schema.pattern === 'string' ? new RegExp(schema.pattern, 'u') : undefined
    const fits = (text: string) =>
      codePoints(text) >= minLength && codePoints(text) <= maxLength && (!pattern || pattern.test(text))
    const format = schema.format as string | undefined
    const choices: fc.Arbitrary<string>[] = []
    if (format === 'email')
      choices.push(
        fc
          .tuple(
            fc.stringMatching(/^[a-z0-9._%+-]{1,20}$/),
            fc.stringMatching(/^[a-z0-9]{1,10}\.[a-z]{2,6}$/),
          )
          .map(([local, domain]) => `${local.replace(/^\.|\.$|\.(?=\.)/g, 'x')}@${domain}`)
          .filter(fits),
        // RFC 5322 addresses, with every character a local part may have.
        fc.emailAddress().filter(fits),
      )
    else if (format === 'date-time')
      choices.push(
        fc
          .date({
            min: new Date('0001-01-01T00:00:00Z'),
            max: new Date('9999-12-31T23:59:59Z'),
            noInvalidDate: true,
          })
          .map((date) => date.toISOString())
          .filter(fits),
      )
    else if (format === 'uuid') choices.push(fc.uuid().filter(fits))
    else if (pattern) {
      // fast-check writes strings for most patterns; lookarounds it cannot, and for patterns that
      // refuse only a few characters, random Unicode (filtered) reaches further than its ASCII.
      try {
        choices.push(fc.stringMatching(pattern).filter(fits))
      } catch {
        // (lookaround): only the filtered random text below
      }
      const short = ifMostlyPasses(
        fc.string({ unit: 'binary', minLength, maxLength: Math.min(maxLength, 40) }),
        fits,
      )
      choices.push(...short)
      // Text of the longest length the schema allows, for a pattern that random text mostly
      // passes. Sampling it costs seconds for long limits, so it is tried only where it can
      // pass: a pattern that refuses most short random text refuses longer text at least as often.
      if (short.length > 0 && schema.maxLength !== undefined)
        choices.push(...ifMostlyPasses(fc.string({ unit: 'binary', minLength: maxLength, maxLength }), fits))
    } else {
      choices.push(fc.string({ unit: 'grapheme-ascii', minLength, maxLength: Math.min(maxLength, 40) }))
      choices.push(fc.string({ unit: 'binary', minLength, maxLength: Math.min(maxLength, 40) }))
      if (schema.maxLength !== undefined)
        choices.push(fc.string({ unit: 'binary', minLength: maxLength, maxLength }))
    }
    const tricky = [...HOSTILE_TEXT, ...(format ? (TRICKY_FORMATTED[format] ?? []) : [])].filter(
      (text) => fits(text) && accepts(schema, text),
    )
    if (tricky.length > 0) choices.push(fc.constantFrom(...tricky))
    if (choices.length === 0) throw new Error(`cannot write a string for ${JSON.stringify(schema)}`)
    return fc.oneof(...choices)
  }

  function validNumber(schema: Schema, integer: boolean): fc.Arbitrary<unknown> {
    const exclusiveMinimum = schema.exclusiveMinimum as number | undefined
    const exclusiveMaximum = schema.exclusiveMaximum as number | undefined
    const step = integer ? 1 : Number.EPSILON
    const min = Math.max(
      (schema.minimum as number | undefined) ?? -Number.MAX_SAFE_INTEGER,
      exclusiveMinimum === undefined ? -Infinity : exclusiveMinimum + step,
    )
    const max = Math.min(
      (schema.maximum as number | undefined) ?? Number.MAX_SAFE_INTEGER,
      exclusiveMaximum === undefined ? Infinity : exclusiveMaximum - step,
    )
    const inRange = (value: number) => value >= min && value <= max
    // fc.integer stops at 32 bits; ids and prices go up to 2^53 - 1.
    const core = integer
      ? fc.bigInt({ min: BigInt(Math.ceil(min)), max: BigInt(Math.floor(max)) }).map(Number)
      : fc.double({ min, max, noNaN: true, noDefaultInfinity: true })
    const edges: unknown[] = [min, max, 0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32].filter(inRange)
    // The same numbers in other JSON spellings: still numbers, still in range.
    if (inRange(0)) edges.push(new JsonLiteral('-0'))
    if (inRange(100)) edges.push(new JsonLiteral('1e2'), new JsonLiteral('100.0'))
    return fc.oneof(core, fc.constantFrom(...edges))
  }

  function validObject(schema: Schema): fc.Arbitrary<unknown> {
    const properties = (schema.properties ?? {}) as Record<string, Schema>
    const required = (schema.required ?? []) as string[]
    const record = fc.record(
      Object.fromEntries(Object.entries(properties).map(([key, property]) => [key, valid(property)])),
      { requiredKeys: required.filter((key) => key in properties) },
    )
    const extra = schema.additionalProperties
    const withExtra =
      extra !== undefined && extra !== false && extra !== true
        ? fc
            .tuple(
              record,
              fc.dictionary(fc.string({ maxLength: 10 }), valid(extra as Schema), { maxKeys: 3 }),
            )
            .map(([fixed, more]) =>
              Object.entries(more)
                .filter(([key]) => !(key in properties))
                .reduce<object>((object, [key, value]) => withKey(object, key, value), fixed),
            )
        : record
    const minProperties = (schema.minProperties as number | undefined) ?? 0
    const maxProperties = (schema.maxProperties as number | undefined) ?? Infinity
    return withExtra.filter((value) => {
      const count = Object.keys(value as object).length
      return count >= minProperties && count <= maxProperties
    })
  }

  function valid(schema: Schema): fc.Arbitrary<unknown> {
    if ((schema as unknown) === true) return fc.jsonValue()
    schema = resolve(schema)
    check(schema)
    if ('const' in schema) return fc.constant(schema.const)
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]))
    const union = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined
    // oneOf is taken as anyOf: branches are assumed disjoint, which the translator's test checks.
    if (union) return fc.oneof(...union.map(valid), ...(schema.nullable === true ? [fc.constant(null)] : []))
    const typeList = types(schema)
    if (!typeList) return fc.jsonValue()
    return fc.oneof(
      ...typeList.map((type): fc.Arbitrary<unknown> => {
        switch (type) {
          case 'null':
            return fc.constant(null)
          case 'boolean':
            return fc.boolean()
          case 'integer':
            return validNumber(schema, true)
          case 'number':
            return validNumber(schema, false)
          case 'string':
            return validString(schema)
          case 'array': {
            // At most 5 items, to keep values small, unless the schema asks for more (10 recovery codes).
            const minLength = (schema.minItems as number | undefined) ?? 0
            return fc.array(valid((schema.items ?? true) as Schema), {
              minLength,
              maxLength: Math.max(minLength, Math.min((schema.maxItems as number | undefined) ?? 5, 5)),
            })
          }
          case 'object':
            return validObject(schema)
          default:
            throw new Error(`the schema translator does not know the type "${type}"`)
        }
      }),
    )
  }

  /** Violations aimed at the schema's own keywords (the junk of every type is added by `invalid`). */
  function violations(schema: Schema): fc.Arbitrary<unknown>[] {
    const typeList = types(schema) ?? []
    const out: fc.Arbitrary<unknown>[] = []
    if (Array.isArray(schema.enum) || 'const' in schema || schema.anyOf || schema.oneOf) {
      const known = [...((schema.enum as unknown[]) ?? []), schema.const].filter(
        (v) => typeof v === 'string',
      ) as string[]
      out.push(
        fc.constantFrom('', 'x', ...known.flatMap((v) => [v.toUpperCase(), ` ${v}`, `${v}\u0000`, `-${v}`])),
      )
    }
    if (typeList.includes('integer') || typeList.includes('number')) {
      const min = (schema.minimum ?? schema.exclusiveMinimum) as number | undefined
      const max = (schema.maximum ?? schema.exclusiveMaximum) as number | undefined
      const near = [min, max].filter((bound): bound is number => bound !== undefined)
      out.push(
        fc.constantFrom(
          ...near.flatMap((bound) => [bound - 1, bound + 1, bound + 0.5]),
          2 ** 53,
          -(2 ** 53),
          1e300,
        ),
      )
      out.push(fc.constantFrom(...['1e400', '-1e400', '1.5', '1e-400'].map((text) => new JsonLiteral(text))))
    }
    if (typeList.includes('string')) {
      const minLength = (schema.minLength as number | undefined) ?? 0
      const maxLength = schema.maxLength as number | undefined
      if (minLength > 0) out.push(fc.string({ unit: 'grapheme-ascii', maxLength: minLength - 1 }))
      if (maxLength !== undefined) {
        out.push(fc.string({ unit: 'grapheme-ascii', minLength: maxLength + 1, maxLength: maxLength + 8 }))
        out.push(fc.string({ unit: 'binary', minLength: maxLength + 1, maxLength: maxLength + 8 }))
        out.push(fc.constant('x'.repeat(Math.min(maxLength * 4 + 1, 60_000))))
      }
      if (schema.pattern || schema.format) {
        const refused = [...HOSTILE_TEXT, ...(TRICKY_FORMATTED[schema.format as string] ?? [])].filter(
          (text) => !accepts(schema, text),
        )
        if (refused.length > 0) out.push(fc.constantFrom(...refused))
        out.push(
          ...ifMostlyPasses(fc.string({ unit: 'binary', maxLength: 20 }), (text) => !accepts(schema, text)),
        )
      }
    }
    if (typeList.includes('array')) {
      if (schema.maxItems !== undefined)
        out.push(
          fc.array(valid((schema.items ?? true) as Schema), {
            minLength: (schema.maxItems as number) + 1,
            maxLength: (schema.maxItems as number) + 3,
          }),
        )
      const badItem = schema.items ? invalid(schema.items as Schema) : undefined
      if (badItem)
        out.push(
          fc
            .tuple(fc.array(valid(schema.items as Schema), { maxLength: 3 }), badItem)
            .map(([items, bad]) => [...items, bad]),
        )
    }
    if (typeList.includes('object')) out.push(...objectViolations(schema))
    return out
  }

  function objectViolations(schema: Schema): fc.Arbitrary<unknown>[] {
    const properties = (schema.properties ?? {}) as Record<string, Schema>
    const required = (schema.required ?? []) as string[]
    const base = validObject(schema) as fc.Arbitrary<Record<string, unknown>>
    const out: fc.Arbitrary<unknown>[] = []
    if (required.length > 0)
      out.push(
        fc
          .tuple(base, fc.subarray(required, { minLength: 1 }))
          .map(([object, missing]) =>
            Object.fromEntries(Object.entries(object).filter(([key]) => !missing.includes(key))),
          ),
      )
    if (schema.additionalProperties === false)
      out.push(
        fc
          .tuple(base, fc.oneof(fc.constantFrom(...UNKNOWN_KEYS), fc.string({ maxLength: 12 })), junk)
          .map(([object, key, value]) => withKey(object, key, value)),
      )
    else if (schema.additionalProperties && schema.additionalProperties !== true) {
      const bad = invalid(schema.additionalProperties as Schema)
      if (bad) out.push(fc.tuple(base, bad).map(([object, value]) => withKey(object, 'extra_field', value)))
    }
    for (const [key, property] of Object.entries(properties)) {
      const bad = invalid(property)
      if (bad) out.push(fc.tuple(base, bad).map(([object, value]) => withKey(object, key, value)))
    }
    if (((schema.minProperties as number | undefined) ?? 0) > 0) out.push(fc.constant({}))
    return out
  }

  function invalid(schema: Schema): fc.Arbitrary<unknown> | undefined {
    if ((schema as unknown) === true) return undefined
    const resolved = resolve(schema)
    check(resolved)
    const union = (resolved.anyOf ?? resolved.oneOf) as Schema[] | undefined
    const aimed = union
      ? [...violations(resolved), ...union.flatMap((branch) => violations(resolve(branch)))]
      : violations(resolved)
    const refuses = (value: unknown) => !accepts(resolved, value)
    // A schema that takes anything has no invalid values (fast-check would spin on the filter).
    if (!fc.sample(junk, { numRuns: 200, seed: 7 }).some(refuses) && aimed.length === 0) return undefined
    return fc
      .oneof({ arbitrary: junk, weight: 1 }, ...aimed.map((arbitrary) => ({ arbitrary, weight: 2 })))
      .filter(refuses)
  }

  return { valid, invalid, accepts, explain }
}
