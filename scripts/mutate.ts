/**
 * `npm run mutate [-- group…] [--full]`: mutation testing of the security code with StrykerJS.
 *
 * Each group of scripts/mutation-groups.ts is one Stryker run: its source files are mutated one
 * change at a time, and each mutant is run against the group's test files that execute it (each
 * file through Node's test runner and tsx, as `npm test` runs it). Runs are incremental: a mutant
 * whose code and covering tests have not changed since the last run keeps its result
 * (reports/mutation/<group>.incremental.json); `--full` runs everything again.
 *
 * Reports: reports/mutation/<group>.html and .json per group, and reports/mutation/summary.md with
 * the score per folder over every group's last report (docs/testing.md explains the survivors).
 * The database URLs and Redis are read from TEST_POSTGRES_URL, TEST_MYSQL_URL and TEST_REDIS_URL,
 * as `npm test` reads them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import { Stryker } from '@stryker-mutator/core'
import { Kysely, MysqlDialect, PostgresDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import pg from 'pg'
import { mutationGroups } from './mutation-groups.js'

const REPORTS = 'reports/mutation'
const DETECTED = new Set(['Killed', 'Timeout'])
const UNDETECTED = new Set(['Survived', 'NoCoverage'])

interface ReportMutant {
  status: string
}
interface Report {
  files: Record<string, { mutants: ReportMutant[] }>
}

function parseArguments(argv: string[]) {
  const names = argv.filter((arg) => !arg.startsWith('-'))
  const unknown = names.filter((name) => !(name in mutationGroups))
  if (unknown.length > 0) {
    console.error(
      `npm run mutate: no group named ${unknown.join(', ')}; the groups are: ${Object.keys(mutationGroups).join(', ')}`,
    )
    process.exit(2)
  }
  return {
    groups: names.length > 0 ? names : Object.keys(mutationGroups),
    full: argv.includes('--full'),
    summaryOnly: argv.includes('--summary'),
  }
}

/** The engines a group's tests run on: every engine with a URL for SQL code, else SQLite (and Redis). */
function engineEnvironment(sql: boolean): () => void {
  const saved = {
    TEST_POSTGRES_URL: process.env.TEST_POSTGRES_URL,
    TEST_MYSQL_URL: process.env.TEST_MYSQL_URL,
  }
  if (!sql) for (const name of Object.keys(saved)) delete process.env[name]
  return () => {
    for (const [name, value] of Object.entries(saved)) if (value !== undefined) process.env[name] = value
  }
}

async function runGroup(name: string, full: boolean) {
  const group = mutationGroups[name]!
  const engines = group.sql ? 'every engine with a URL' : 'SQLite'
  console.log(`\n=== mutation group "${name}" (tests on ${engines}): ${group.mutate.join(', ')}`)
  const restore = engineEnvironment(group.sql ?? false)
  const stryker = new Stryker({
    mutate: group.mutate,
    testRunner: 'tap',
    plugins: ['@stryker-mutator/tap-runner', './scripts/mutation-ignorers.mjs'],
    ignorers: ['log-calls'],
    tap: { testFiles: group.tests, nodeArgs: ['--import', 'tsx'], forceBail: true },
    coverageAnalysis: 'perTest',
    concurrency: Number(process.env.MUTATE_CONCURRENCY ?? Math.max(1, availableParallelism())),
    // A test file starts a process, builds the app and migrates a database per engine: seconds.
    timeoutMS: 20_000,
    // Always incremental, so that a --full run (force) also leaves the results the next run starts from.
    incremental: true,
    force: full,
    incrementalFile: `${REPORTS}/${name}.incremental.json`,
    reporters: [process.stdout.isTTY ? 'progress' : 'progress-append-only', 'clear-text', 'html', 'json'],
    clearTextReporter: { reportTests: false, reportScoreTable: true, logTests: false },
    htmlReporter: { fileName: `${REPORTS}/${name}.html` },
    jsonReporter: { fileName: `${REPORTS}/${name}.json` },
    ignorePatterns: ['/dist', '/data', '/coverage', '/test-artifacts', '/reports', '/bench', '*.db*'],
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    thresholds: { high: 95, low: 90, break: null },
  })
  const started = Date.now()
  try {
    await stryker.runMutationTest()
  } finally {
    restore()
    await dropLeftovers(started)
  }
}

/**
 * A mutant's test file is stopped at its first failure (that is what makes a run fast), before
 * its `after` hooks drop the databases it made: this drops the test databases (named
 * fastauth_mutant_<time in base 36>_…, test/support/app.ts) and SQLite folders made since `since`.
 * Only the mutants' own: a test run beside this one names its databases fastauth_test_….
 */
async function dropLeftovers(since: number) {
  const madeSince = (name: string) => {
    const time = Number.parseInt(name.split('_')[2] ?? '', 36)
    return Number.isFinite(time) && time >= since
  }
  const servers: [string | undefined, () => Kysely<unknown>, string][] = [
    [
      process.env.TEST_POSTGRES_URL,
      () =>
        new Kysely({
          dialect: new PostgresDialect({
            pool: new pg.Pool({ connectionString: process.env.TEST_POSTGRES_URL, max: 1 }),
          }),
        }),
      "select datname as name from pg_database where datname like 'fastauth\\_mutant\\_%'",
    ],
    [
      process.env.TEST_MYSQL_URL,
      () =>
        new Kysely({
          dialect: new MysqlDialect({
            pool: createPool({ uri: process.env.TEST_MYSQL_URL!, connectionLimit: 1 }),
          }),
        }),
      "select schema_name as name from information_schema.schemata where schema_name like 'fastauth\\_mutant\\_%'",
    ],
  ]
  let dropped = 0
  for (const [url, connect, list] of servers) {
    if (!url) continue
    const db = connect()
    try {
      const { rows } = await sql.raw<{ name: string }>(list).execute(db)
      for (const { name } of rows.filter((row) => madeSince(row.name)))
        // PostgreSQL refuses to drop a database in use: one of a test run still going is kept.
        await sql`drop database if exists ${sql.id(name)}`.execute(db).then(
          () => (dropped += 1),
          () => undefined,
        )
    } finally {
      await db.destroy()
    }
  }
  for (const entry of readdirSync(tmpdir()))
    if (entry.startsWith('fastauth-mutant-') && statSync(path.join(tmpdir(), entry)).mtimeMs >= since)
      rmSync(path.join(tmpdir(), entry), { recursive: true, force: true })
  if (dropped > 0) console.log(`dropped ${dropped} test database(s) left by stopped test files`)
}

/** Score per folder over every group's last JSON report: killed or timed out ÷ all valid mutants. */
function summarize(): string {
  const folders = new Map<string, { detected: number; undetected: number }>()
  for (const name of Object.keys(mutationGroups)) {
    const file = `${REPORTS}/${name}.json`
    if (!existsSync(file)) continue
    const report = JSON.parse(readFileSync(file, 'utf8')) as Report
    for (const [fileName, { mutants }] of Object.entries(report.files)) {
      const folder = path.dirname(path.relative(process.cwd(), path.resolve(fileName)))
      const counts = folders.get(folder) ?? { detected: 0, undetected: 0 }
      for (const { status } of mutants) {
        if (DETECTED.has(status)) counts.detected += 1
        else if (UNDETECTED.has(status)) counts.undetected += 1
      }
      folders.set(folder, counts)
    }
  }
  const rows = [...folders].sort(([a], [b]) => a.localeCompare(b))
  const total = rows.reduce(
    (sum, [, c]) => ({ detected: sum.detected + c.detected, undetected: sum.undetected + c.undetected }),
    { detected: 0, undetected: 0 },
  )
  const line = (label: string, c: { detected: number; undetected: number }) => {
    const all = c.detected + c.undetected
    const score = all === 0 ? 'n/a' : `${((100 * c.detected) / all).toFixed(1)} %`
    return `| ${label} | ${all} | ${c.detected} | ${c.undetected} | ${score} |`
  }
  return [
    '| folder | mutants | detected | survived | score |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map(([folder, counts]) => line(folder, counts)),
    line('**all**', total),
  ].join('\n')
}

const options = parseArguments(process.argv.slice(2))
process.env.NODE_ENV = 'test'
// The test files' databases are named fastauth_mutant_… (dropLeftovers).
process.env.TEST_DATABASE_TAG = 'mutant'
for (const [variable, engine] of Object.entries({
  TEST_POSTGRES_URL: 'PostgreSQL',
  TEST_MYSQL_URL: 'MySQL/MariaDB',
  TEST_REDIS_URL: 'Redis',
}))
  if (!process.env[variable]) console.log(`note: ${variable} is not set: mutants are not judged on ${engine}`)
mkdirSync(REPORTS, { recursive: true })
if (!options.summaryOnly) for (const name of options.groups) await runGroup(name, options.full)
const summary = summarize()
writeFileSync(`${REPORTS}/summary.md`, `${summary}\n`)
console.log(`\nMutation score per folder (${REPORTS}/summary.md):\n${summary}`)
