/** What the scripts that write a file from the code share: reading it back and saying where it drifted. */
import { readFile } from 'node:fs/promises'

/** The file's content, or undefined when there is no such file. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Where `actual` first departs from `expected` (one line, for a test failure), or undefined if equal. */
export function firstDifference(expected: string, actual: string | undefined): string | undefined {
  if (actual === expected) return undefined
  if (actual === undefined) return 'the file does not exist'
  const want = expected.split('\n')
  const have = actual.split('\n')
  const line = want.findIndex((text, i) => text !== have[i])
  const at = line === -1 ? want.length : line
  return `line ${at + 1}: expected ${JSON.stringify(want[at] ?? '(end of file)')}, found ${JSON.stringify(have[at] ?? '(end of file)')}`
}
