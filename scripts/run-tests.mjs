#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's test runner through tsx. Node 20's runner does
// not expand globs itself; extra arguments (files, --test-name-pattern=…) are passed through.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return findTests(full)
    return entry.name.endsWith('.test.ts') ? [full] : []
  })
}

const args = process.argv.slice(2)
const files = args.filter((arg) => !arg.startsWith('-'))
const options = args.filter((arg) => arg.startsWith('-'))
const selected = files.length > 0 ? files : findTests('test').sort()

const SERVICES = {
  TEST_POSTGRES_URL: 'PostgreSQL',
  TEST_MYSQL_URL: 'MySQL/MariaDB',
  TEST_REDIS_URL: 'Redis',
}
for (const [name, value] of Object.entries(SERVICES)) {
  if (!process.env[name]) console.log(`note: ${name} is not set: the ${value} tests are skipped`)
}

const SUMMARY = fileURLToPath(new URL('test-summary.mjs', import.meta.url))
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${SUMMARY}`,
    '--test-reporter-destination=stdout',
    '--test-concurrency=2',
    ...options,
    ...selected,
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
)
// One line on what ran where, whatever the outcome.
const ran = [
  'SQLite',
  ...Object.entries(SERVICES)
    .filter(([name]) => process.env[name])
    .map(([, value]) => value),
]
const notRun = Object.entries(SERVICES)
  .filter(([name]) => !process.env[name])
  .map(([name, value]) => `${value} (${name} is not set)`)
console.log(`engines: ran on ${ran.join(', ')}${notRun.length ? `; skipped ${notRun.join(', ')}` : ''}`)
process.exit(result.status ?? 1)
