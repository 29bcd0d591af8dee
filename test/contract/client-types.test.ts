/**
 * The OpenAPI document is a contract. It is valid OpenAPI 3.1; the typed client generated from it
 * (client/schema.d.ts) is current; and that client runs the README walk-through against a
 * listening server, so a schema that says something the server does not do fails to compile or
 * fails here. That every served route is documented, and every documented operation served, is
 * checked in test/routes/docs/docs.test.ts.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyInstance } from 'fastify'
import type { OpenAPI3 } from 'openapi-typescript'
import {
  firstDifference,
  openApiDocument,
  readClientSchema,
  renderClientSchema,
} from '../../scripts/generate-client.js'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../support/app.js'

const ROOT = path.resolve(import.meta.dirname, '../..')

// ------------------------------------------------------------------ the document and the generated types

/** GET /openapi.json as JSON, typed only as far as these tests look into it. */
type ServedDocument = Record<string, unknown> & {
  openapi: string
  paths: Record<string, Record<string, Record<string, unknown>>>
}

describe('the OpenAPI document and the generated client types', () => {
  let app: FastifyInstance
  let served: ServedDocument
  let generated: OpenAPI3
  /** What client/schema.d.ts should contain. */
  let expected: string

  before(async () => {
    // The default configuration, as the generator's: rate limits on (they add the 429 responses).
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:', RATE_LIMIT_ENABLED: 'true' }), {
      logger: false,
    })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const response = await fetch(`${base}/openapi.json`)
    assert.equal(response.status, 200)
    served = (await response.json()) as ServedDocument
    generated = await openApiDocument()
    expected = await renderClientSchema(generated)
  })
  after(async () => {
    await app?.close()
  })

  test('GET /openapi.json, from a listening server, is a valid OpenAPI 3.1 document', async () => {
    assert.match(served.openapi, /^3\.1\.\d+$/)
    const validator = new Validator()
    const result = await validator.validate(served)
    assert.ok(result.valid, `the document is not valid:\n${JSON.stringify(result.errors, null, 2)}`)
    assert.equal(validator.version, '3.1')
  })

  test('the validator refuses what OpenAPI 3.1 forbids: an optional path parameter, a response without a description', async () => {
    const optionalPathParameter = structuredClone(served)
    const getProduct = optionalPathParameter.paths['/product/{id}']!.get as {
      parameters: { in: string; required?: boolean }[]
    }
    const idParameter = getProduct.parameters.find((parameter) => parameter.in === 'path')
    assert.ok(idParameter)
    idParameter.required = false

    const undescribedResponse = structuredClone(served)
    const login = undescribedResponse.paths['/login']!.post as {
      responses: Record<string, { description?: string }>
    }
    delete login.responses['200']!.description

    for (const [broken, where] of [
      [optionalPathParameter, '/paths/~1product~1{id}/get/parameters/'],
      [undescribedResponse, '/paths/~1login/post/responses/200'],
    ] as const) {
      const result = await new Validator().validate(broken)
      assert.equal(result.valid, false, `a broken document at ${where} passed`)
      assert.ok(
        Array.isArray(result.errors) && result.errors.some((error) => error.instancePath.startsWith(where)),
        JSON.stringify(result.errors),
      )
    }
  })

  test('the generator builds the very document the server serves', () => {
    assert.deepEqual(generated, served)
  })

  test('client/schema.d.ts is what `npm run client:generate` writes now', async () => {
    const difference = firstDifference(expected, await readClientSchema())
    assert.equal(
      difference,
      undefined,
      `client/schema.d.ts is out of date (${difference}): run npm run client:generate`,
    )
  })

  test('the check notices an edited or a missing client/schema.d.ts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fastauth-client-'))
    try {
      const edited = path.join(dir, 'schema.d.ts')
      await writeFile(edited, expected.replace('price: number', 'price: string'))
      assert.match(firstDifference(expected, await readClientSchema(edited)) ?? '', /^line \d+: expected/)
      await writeFile(edited, `${expected}\n`)
      assert.match(firstDifference(expected, await readClientSchema(edited)) ?? '', /end of file/)
      assert.equal(
        firstDifference(expected, await readClientSchema(path.join(dir, 'none.d.ts'))),
        'the file does not exist',
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('`generate-client.ts --check` (npm run client:generate -- --check) passes in one line and writes nothing', async () => {
    const before = await readClientSchema()
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/generate-client.ts', '--check'],
      { cwd: ROOT, timeout: 60_000 },
    )
    assert.equal(stdout, 'client/schema.d.ts is up to date\n')
    assert.equal(stderr, '')
    assert.equal(await readClientSchema(), before)
  })
})
