/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --profile <scenario>`):
 * where the time went, by function and by file or package, as self time (the function itself was
 * running) and inclusive time (it was on the stack). For the picture, open the .cpuprofile in Chrome
 * DevTools (Performance → Load profile) or https://www.speedscope.app, which draw the flame graph.
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Runtime pseudo-frames: no code of ours or of a package. */
const PSEUDO = new Set(['(root)', '(program)', '(idle)', '(garbage collector)'])

/** Where a frame's code lives: an npm package, a file of ours, Node's own code, or V8. */
function ownerOf(url: string, functionName: string): string {
  if (PSEUDO.has(functionName)) return functionName
  if (url === '') return '(native V8/C++)'
  if (url.startsWith('node:')) return 'node: (Node.js internals)'
  const file = url.replace(/^file:\/\//, '')
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)
  if (packageMatch) {
    // The innermost package: a dependency of a dependency is named as itself.
    const all = [...file.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)]
    return `pkg ${all.at(-1)![1]}`
  }
  const root = path.resolve(import.meta.dirname, '..')
  return file.startsWith(root) ? path.relative(root, file) : file
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  if (PSEUDO.has(functionName)) return functionName
  const name = functionName || '(anonymous)'
  if (!url) return `${name} (native)`
  return `${name}  ${ownerOf(url, functionName).replace(/^pkg /, '')}:${lineNumber + 1}`
}

type Table = Map<string, number>

const add = (table: Table, key: string, value: number) => table.set(key, (table.get(key) ?? 0) + value)

export function summariseProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

  const selfByFunction: Table = new Map()
  const selfByOwner: Table = new Map()
  const inclusiveByFunction: Table = new Map()
  const inclusiveByOwner: Table = new Map()
  let total = 0
  const { samples, timeDeltas } = profile
  for (let i = 0; i < samples.length; i++) {
    // A sample stands for the time until the next one.
    const micros = timeDeltas[i + 1] ?? 0
    if (micros <= 0) continue
    total += micros
    const leaf = byId.get(samples[i]!)!
    add(selfByFunction, frameName(leaf), micros)
    add(selfByOwner, ownerOf(leaf.callFrame.url, leaf.callFrame.functionName), micros)
    // Inclusive: each function and owner once per sample, however deep its recursion.
    const functions = new Set<string>()
    const owners = new Set<string>()
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id)!
      if (node.callFrame.functionName === '(root)') continue
      functions.add(frameName(node))
      owners.add(ownerOf(node.callFrame.url, node.callFrame.functionName))
    }
    for (const name of functions) add(inclusiveByFunction, name, micros)
    for (const name of owners) add(inclusiveByOwner, name, micros)
  }

  const busy = total - (selfByFunction.get('(idle)') ?? 0)
  const table = (title: string, rows: Table, limit: number) => {
    const sorted = [...rows.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit)
    return [
      `\n${title}`,
      '     ms   % busy  ',
      ...sorted.map(
        ([name, micros]) =>
          `${(micros / 1000).toFixed(0).padStart(7)}  ${((micros / busy) * 100).toFixed(1).padStart(6)}  ${name}`,
      ),
    ].join('\n')
  }
  return [
    `${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (not idle) on the main thread`,
    table('Self time by file or package', selfByOwner, top),
    table('Self time by function', selfByFunction, top),
    table('Inclusive time by file or package', inclusiveByOwner, top),
    table('Inclusive time by function', inclusiveByFunction, top),
  ].join('\n')
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' } },
    allowPositionals: true,
  })
  if (positionals.length === 0) {
    console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [--top 25]')
    process.exit(2)
  }
  for (const file of positionals) console.log(summariseProfile(file, Number(values.top)))
}
