/**
 * The schema translator that the property tests stand on (test/support/schema-arbitraries.ts):
 * for every schema of /openapi.json, and for the keywords the document does not use yet, the
 * values it calls valid pass Ajv and the values it calls invalid fail it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../support/app.js'
import { schemaArbitraries, toJsonText, type Schema } from '../support/schema-arbitraries.js'
import { type OpenApiDocument } from './properties/world.js'

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
