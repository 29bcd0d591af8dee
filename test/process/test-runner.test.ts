/**
 * `npm test` (scripts/run-tests.mjs) as a newcomer runs it: without database URLs it says what was
 * skipped (a suite skipped whole included, which Node's summary does not count) and on which
 * engines the tests ran; the exit code agrees with the summary.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'

function runTests(file: string): Promise<{ code: number | null; stdout: string }> {
  const env = { ...process.env }
  // NODE_TEST_CONTEXT would make the inner runner report to this one instead of printing.
  for (const name of ['TEST_POSTGRES_URL', 'TEST_MYSQL_URL', 'TEST_REDIS_URL', 'NODE_TEST_CONTEXT'])
    delete env[name]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/run-tests.mjs', file], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 120_000,
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout }))
  })
}

test('without database URLs: skipped suites and tests are reported with their reasons, and where the tests ran', async () => {
  const { code, stdout } = await runTests('test/support/fixtures/skips.fixture.ts')
  assert.equal(code, 0, stdout)
  assert.match(stdout, /^note: TEST_POSTGRES_URL is not set: the PostgreSQL tests are skipped$/m)
  assert.match(stdout, /^ℹ pass 2$/m)
  assert.match(
    stdout,
    /^skipped: 1 suite \(TEST_POSTGRES_URL is not set: 1\), 1 test \(no reason to run: 1\)$/m,
  )
  assert.match(
    stdout,
    /^engines: ran on SQLite; skipped PostgreSQL \(TEST_POSTGRES_URL is not set\), MySQL\/MariaDB \(TEST_MYSQL_URL is not set\), Redis \(TEST_REDIS_URL is not set\)$/m,
  )
  assert.doesNotMatch(stdout, /a skipped suite ran/)
})

test('a failing test: the summary says fail 1 and the exit code is 1', async () => {
  const { code, stdout } = await runTests('test/support/fixtures/failure.fixture.ts')
  assert.match(stdout, /^ℹ fail 1$/m)
  assert.equal(code, 1)
  assert.match(stdout, /^skipped: nothing$/m)
})
