/**
 * Every environment variable is declared once (src/config/variables/). These tests keep the
 * declaration complete (every Config field filled) and the documents written from it current:
 * .env.example and the README's configuration table.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import ts from 'typescript'
import { TABLE_END, TABLE_START } from '../../scripts/config-docs.js'
import { generateConfigDocs, outOfDate } from '../../scripts/generate-config-docs.js'
import { loadConfig, readEnvFile } from '../../src/config.js'
import { VARIABLES } from '../../src/config/variables/index.js'

const ROOT = path.resolve(import.meta.dirname, '../..')
const SECRET = 'a-secret-key-of-more-than-32-bytes-0123456789'
const DECLARED = VARIABLES.map((variable) => variable.name)

/** The leaves of the Config interface ('port', 'rateLimit.perIp'), as TypeScript sees them. */
function configFields(): string[] {
  const file = path.join(ROOT, 'src', 'config', 'fields.ts')
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    lib: ['lib.es2023.d.ts'],
    types: [],
  })
  const checker = program.getTypeChecker()
  const config = program
    .getSourceFile(file)
    ?.statements.find(
      (statement): statement is ts.InterfaceDeclaration =>
        ts.isInterfaceDeclaration(statement) && statement.name.text === 'Config',
    )
  assert.ok(config, `${file} declares no Config interface`)
  const leaves = (type: ts.Type, prefix: string): string[] =>
    checker.getPropertiesOfType(type).flatMap((property) => {
      const propertyType = checker.getTypeOfSymbol(property)
      const nested =
        !propertyType.isUnion() &&
        (propertyType.flags & ts.TypeFlags.Object) !== 0 &&
        !checker.isArrayType(propertyType)
      return nested ? leaves(propertyType, `${prefix}${property.name}.`) : [`${prefix}${property.name}`]
    })
  return leaves(checker.getTypeAtLocation(config.name), '')
}

describe('the declaration of the configuration', () => {
  test('every Config field is filled by exactly one variable', () => {
    const filled: string[] = VARIABLES.flatMap((variable) => variable.fills.map((fill) => fill.field))
    const fields = configFields()
    assert.ok(fields.includes('rateLimit.perIp'), `nested fields are listed: ${fields.join(', ')}`)
    assert.deepEqual(
      fields.filter((field) => !filled.includes(field)),
      [],
      'Config fields that no variable fills',
    )
    assert.deepEqual(
      filled.filter((field, i) => filled.indexOf(field) !== i),
      [],
      'Config fields filled by two variables',
    )
    assert.deepEqual(
      filled.filter((field) => !fields.includes(field)),
      [],
      'fields filled that Config does not have',
    )
  })

  test('each variable is declared once', () => {
    assert.deepEqual(
      DECLARED.filter((name, i) => DECLARED.indexOf(name) !== i),
      [],
    )
  })
})

/** The variables named in .env.example, set or commented out ("# NAME=example"). */
function envExampleNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!))
}

/** The variables of the README's configuration table, one per row. */
function readmeTableNames(text: string): string[] {
  const table = text.slice(text.indexOf(TABLE_START), text.indexOf(TABLE_END))
  return [...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)` /gm)].map((match) => match[1]!)
}

describe('.env.example and the README table, written from the declaration', () => {
  test('are what `npm run config:docs` writes now', async () => {
    for (const { name, difference } of await outOfDate(await generateConfigDocs()))
      assert.fail(`${name} is out of date (${difference}): run npm run config:docs`)
  })

  test('name every declared variable, and no other', async () => {
    const envExample = await readFile(path.join(ROOT, '.env.example'), 'utf8')
    assert.deepEqual([...envExampleNames(envExample)].sort(), [...DECLARED].sort())
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8')
    assert.deepEqual(readmeTableNames(readme), DECLARED)
  })

  test('.env.example, copied to .env, configures the defaults', () => {
    const fromFile = loadConfig({ ...readEnvFile(path.join(ROOT, '.env.example')), SECRET_KEY: SECRET })
    assert.deepEqual(fromFile, loadConfig({ SECRET_KEY: SECRET }))
  })

  test('the check notices an edited document, a missing one, and a README without its markers', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fastauth-config-docs-'))
    try {
      for (const name of ['README.md', '.env.example'])
        await copyFile(path.join(ROOT, name), path.join(dir, name))
      assert.deepEqual(await outOfDate(await generateConfigDocs(dir)), [])

      const envExample = await readFile(path.join(dir, '.env.example'), 'utf8')
      await writeFile(path.join(dir, '.env.example'), envExample.replace(/^PORT=8000/m, 'PORT=8080'))
      const readme = await readFile(path.join(dir, 'README.md'), 'utf8')
      await writeFile(path.join(dir, 'README.md'), readme.replace(/^(\| `PORT` +\| )`8000`/m, '$1`8080`'))
      const stale = await outOfDate(await generateConfigDocs(dir))
      assert.deepEqual(
        stale.map(({ name }) => name),
        ['.env.example', 'README.md'],
      )
      for (const { difference } of stale) assert.match(difference, /^line \d+: expected .*8000/)

      await rm(path.join(dir, '.env.example'))
      assert.deepEqual(await outOfDate(await generateConfigDocs(dir)), [
        { name: '.env.example', difference: 'the file does not exist' },
        stale[1],
      ])

      await writeFile(path.join(dir, 'README.md'), readme.replace(TABLE_START, ''))
      await assert.rejects(generateConfigDocs(dir), /README\.md has no configuration table/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('`generate-config-docs.ts --check` (npm run config:docs -- --check) passes in one line and writes nothing', async () => {
    const files = ['README.md', '.env.example'].map((name) => path.join(ROOT, name))
    const before = await Promise.all(files.map((file) => readFile(file, 'utf8')))
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/generate-config-docs.ts', '--check'],
      { cwd: ROOT, timeout: 60_000 },
    )
    assert.equal(stdout, '.env.example and README.md are up to date\n')
    assert.equal(stderr, '')
    assert.deepEqual(await Promise.all(files.map((file) => readFile(file, 'utf8'))), before)
  })
})
