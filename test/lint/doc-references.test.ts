import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'

/**
 * The documents name the files that hold the code and the tests they describe. A file that moves
 * or is split would leave them pointing at nothing: each such path must exist. A path followed by a
 * placeholder (`test/services/<domain>.test.ts`) is a pattern, not a file; `bench/profiles/` is
 * written by `npm run bench`.
 */
const DOCUMENTS = ['README.md', ...readdirSync('docs').map((name) => `docs/${name}`)].filter((file) =>
  file.endsWith('.md'),
)
const PATH = /\b(?:src|test|scripts|bench|docs|client)\/[A-Za-z0-9_./-]+/g
const GENERATED = new Set(['bench/profiles/'])

function referencedPaths(text: string): string[] {
  const found: string[] = []
  for (const match of text.matchAll(PATH)) {
    const next = text[match.index + match[0].length]
    if (next === '<' || next === '*' || next === '{') continue
    const path = match[0].replace(/[.,;:]+$/, '')
    if (!GENERATED.has(path)) found.push(path)
  }
  return found
}

test('every source, test or script path the README and docs/ name exists', () => {
  const missing = DOCUMENTS.flatMap((document) =>
    referencedPaths(readFileSync(document, 'utf8'))
      // An import names a TypeScript module by its .js output (ESM).
      .filter((path) => !existsSync(path) && !existsSync(path.replace(/\.js$/, '.ts')))
      .map((path) => `${document}: ${path}`),
  )
  assert.deepEqual(missing, [])
})

test('the check sees a path that does not exist', () => {
  const paths = referencedPaths('Code: `src/no-such-module.ts`; tests: `test/routes/<family>/`.')
  assert.deepEqual(paths, ['src/no-such-module.ts'])
  assert.equal(existsSync(paths[0]!), false)
})
