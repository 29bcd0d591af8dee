/**
 * The report of `npm run bench`: the machine, the command, a table per engine (with a column of
 * ours ÷ the FastAPI seed when it ran), written to docs/performance.md between
 * `<!-- bench:start -->` and `<!-- bench:end -->` (the rest of the file is kept), formatted with the
 * project's Prettier settings.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import path from 'node:path'
import * as prettier from 'prettier'
import type { LoadResult } from './load.js'
import { median, ROOT } from './processes.js'
import { megabytes, type ScenarioRow } from './scenarios.js'

export interface EngineReport {
  engine: string
  rows: ScenarioRow[]
  /** The largest peak RSS of each server over the scenarios, and in which. */
  memory: { ours: number; oursScenario: string; reference: number; referenceScenario: string }
  coldStart: { ours: number[]; reference: number[] }
}

export interface RunInfo {
  date: Date
  command: string
  seconds: number
  /** Lines describing the method (servers, load, data). */
  method: string[]
  preliminary: boolean
  loadBefore: number[]
  loadAfter: number[]
}

/** The targets the process table judges: issue 7's peak RSS, issue 17's cold start. */
const PEAK_RSS_TARGET_BYTES = 150e6
const COLD_START_TARGET_MS = 500

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]
    if (pretty) return `${pretty}, Linux ${release()}`
  } catch {
    // not Linux, or no os-release: the kernel release alone
  }
  return `${process.platform} ${release()}`
}

export function machine(): string {
  const cores = cpus()
  return `${cores.length} × ${cores[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${osName()}, Node ${process.version}`
}

export const currentLoad = () => loadavg().map((value) => Number(value.toFixed(2)))

const fixed = (value: number) =>
  Number.isNaN(value) ? '–' : value < 10 ? value.toFixed(2) : value.toFixed(1)
const rate = (result: LoadResult) =>
  `${Math.round(result.requestsPerSecond).toLocaleString('en')}${result.failures ? ` (${result.failures} failed)` : ''}`
const verdict = (met: boolean) => (met ? 'yes' : '**no**')

export function engineSection(report: EngineReport): string {
  const title = report.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'
  const oursStart = median(report.coldStart.ours)
  const { memory } = report
  // The seed's column only where it ran (SQLite, with BENCH_SEED_DIR).
  const withSeed = report.rows.some((row) => row.seed)
  const seedColumn = (row: ScenarioRow) => (withSeed ? ` ${row.seed?.ratio ?? ''} |` : '')
  return [
    `### ${title}`,
    '',
    `| scenario | ours req/s | p50 ms | p99 ms | reference | ref req/s | p50 ms | p99 ms | ours ÷ ref |${withSeed ? ' ours ÷ seed |' : ''} target | met |`,
    `| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |${withSeed ? ' ---: |' : ''} --- | --- |`,
    ...report.rows.map(
      (row) =>
        `| ${row.scenario} | ${rate(row.ours)} | ${fixed(row.ours.p50)} | ${fixed(row.ours.p99)} | ${row.referenceName} | ${rate(row.reference)} | ${fixed(row.reference.p50)} | ${fixed(row.reference.p99)} | ${row.ratio} |${seedColumn(row)} ${row.target?.text ?? ''} | ${row.target ? verdict(row.target.met) : ''} |`,
    ),
    '',
    '| process | ours | reference | target | met |',
    '| --- | ---: | ---: | --- | --- |',
    `| peak RSS (VmHWM), largest over the scenarios | ${megabytes(memory.ours)} (${memory.oursScenario}) | ${megabytes(memory.reference)} (${memory.referenceScenario}) | ≤ 150 MB | ${verdict(memory.ours <= PEAK_RSS_TARGET_BYTES)} |`,
    // None with --cold-starts 0.
    ...(report.coldStart.ours.length > 0
      ? [
          `| cold start, spawn → first 200 (median of ${report.coldStart.ours.length}) | ${oursStart.toFixed(0)} ms | ${median(report.coldStart.reference).toFixed(0)} ms | ≤ ${COLD_START_TARGET_MS} ms | ${verdict(oursStart <= COLD_START_TARGET_MS)} |`,
        ]
      : []),
  ].join('\n')
}

export function benchSection(run: RunInfo, engines: EngineReport[]): string {
  const minutes = Math.floor(run.seconds / 60)
  return [
    '<!-- bench:start -->',
    '',
    '## Figures (`npm run bench`)',
    '',
    ...(run.preliminary
      ? [
          '**Preliminary**: measured while other test suites were running on this 2-core machine (load average',
          `${run.loadBefore.join(', ')} at the start, ${run.loadAfter.join(', ')} at the end). The ratios of back-to-back`,
          'runs mean more than the absolute figures; a run on a quiet machine replaces these.',
          '',
        ]
      : []),
    `Measured ${run.date.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine()}. Load`,
    `average ${run.loadBefore.join(', ')} before the run, ${run.loadAfter.join(', ')} after.`,
    '',
    '```',
    run.command,
    '```',
    '',
    `(${minutes} min ${Math.round(run.seconds % 60)} s.) ${run.method.join(' ')}`,
    '',
    ...engines.flatMap((engine) => [engineSection(engine), '']),
    '<!-- bench:end -->',
  ].join('\n')
}

export async function writeBenchSection(section: string): Promise<string> {
  const file = path.join(ROOT, 'docs', 'performance.md')
  let doc = readFileSync(file, 'utf8')
  doc = doc.includes('<!-- bench:start -->')
    ? doc.replace(/<!-- bench:start -->[\s\S]*<!-- bench:end -->/, () => section)
    : `${doc.trimEnd()}\n\n${section}\n`
  const options = (await prettier.resolveConfig(file)) ?? {}
  writeFileSync(file, await prettier.format(doc, { ...options, filepath: file }))
  return file
}
