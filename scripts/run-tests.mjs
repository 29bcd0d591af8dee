#!/usr/bin/env node
// Runs every test/**/*.test.ts file with Node's test runner through tsx. Node 20's runner does
// not expand globs itself; extra arguments (files, --test-name-pattern=…) are passed through.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'

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

for (const [name, value] of Object.entries({
  TEST_POSTGRES_URL: 'PostgreSQL',
  TEST_MYSQL_URL: 'MySQL/MariaDB',
  TEST_REDIS_URL: 'Redis',
})) {
  if (!process.env[name]) console.log(`note: ${name} is not set: the ${value} tests are skipped`)
}

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...options, ...selected],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
)
process.exit(result.status ?? 1)
