/**
 * Writes .env.example and the table of README.md's "Configuration" section from the declaration
 * of every variable (src/config/variables/), so that the three never disagree.
 *
 *   npm run config:docs               write both
 *   npm run config:docs -- --check    write nothing; exit 1 when either is out of date
 *
 * test/config/declaration.test.ts runs the same check, so CI fails when a variable changed and the
 * documents were not regenerated.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as prettier from 'prettier'
import { VARIABLE_GROUPS } from '../src/config/variables/index.js'
import { renderConfigTable, renderEnvExample, withConfigTable } from './config-docs.js'
import { firstDifference, readIfExists } from './generated-file.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface GeneratedDocument {
  /** Relative to the repository, with forward slashes. */
  name: string
  file: string
  /** What the file should contain now. */
  expected: string
}

/**
 * The two documents in the folder `root` (the repository, or a copy in a test). The README keeps
 * its hand-written prose, so what it should contain depends on what it contains; it comes out as
 * the repository's `prettier --check` wants it.
 */
export async function generateConfigDocs(root = ROOT): Promise<GeneratedDocument[]> {
  const envExample = path.join(root, '.env.example')
  const readme = path.join(root, 'README.md')
  const current = await readIfExists(readme)
  if (current === undefined) throw new Error(`${readme} does not exist`)
  const options = await prettier.resolveConfig(path.join(ROOT, 'README.md'), { editorconfig: true })
  const formatted = await prettier.format(withConfigTable(current, renderConfigTable(VARIABLE_GROUPS)), {
    ...options,
    filepath: readme,
  })
  return [
    { name: '.env.example', file: envExample, expected: renderEnvExample(VARIABLE_GROUPS) },
    { name: 'README.md', file: readme, expected: formatted },
  ]
}

/** Each document that differs from what it should be, with where it first does. */
export async function outOfDate(
  documents: GeneratedDocument[],
): Promise<{ name: string; difference: string }[]> {
  const stale = []
  for (const { name, file, expected } of documents) {
    const difference = firstDifference(expected, await readIfExists(file))
    if (difference !== undefined) stale.push({ name, difference })
  }
  return stale
}

async function main(args: string[]): Promise<number> {
  const unknown = args.find((arg) => arg !== '--check')
  if (unknown !== undefined) {
    console.error(`error: unknown argument "${unknown}" (usage: npm run config:docs [-- --check])`)
    return 2
  }
  const documents = await generateConfigDocs()
  const stale = await outOfDate(documents)
  const names = documents.map(({ name }) => name).join(' and ')
  if (args.includes('--check')) {
    for (const { name, difference } of stale)
      console.error(`${name} is out of date (${difference}): run npm run config:docs`)
    if (stale.length === 0) console.log(`${names} are up to date`)
    return stale.length === 0 ? 0 : 1
  }
  for (const { name, file, expected } of documents) {
    if (!stale.some((document) => document.name === name)) continue
    await writeFile(file, expected)
    console.log(`wrote ${name}`)
  }
  if (stale.length === 0) console.log(`${names} are up to date (unchanged)`)
  return 0
}

// Run as a script (not when a test imports the functions above).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2))
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  }
}
