/**
 * `npm run cli -- keys`, run as a real process on a SQLite file of its own, as an operator would:
 * the first key on a fresh database, a rotation (the new key published at once and signing 7
 * minutes later, the old one verifying for the token lifetime after that), a second rotation
 * refused while a key waits, an unknown action, and the HS algorithms, which store nothing. What
 * the CLI prints is compared with what it stored, read from the file directly (read-only).
 */
import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import path from 'node:path'
import { describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { calculateJwkThumbprint } from 'jose'
import { createDataEncryption, deriveDataEncryptionKey } from '../../src/auth/data-encryption.js'
import { runCliProcess, workDir, type CliResult } from './support.js'

const SECRET = 'keys-cli-test-secret-0123456789-abcdefghijkl'
/** Not the default (15), so that the old key's end shows it is counted from this setting. */
const ACCESS_TOKEN_MINUTES = 20
/** PUBLISH_AHEAD_SECONDS: JWKS max-age 300 s + reload 60 s + 60 s. */
const PUBLISH_AHEAD_MS = 420_000
/** The old key verifies until the new one signs + the token lifetime + the 60 s `iat` leeway. */
const VERIFY_AFTER_MS = ACCESS_TOKEN_MINUTES * 60_000 + 60_000
type Result = CliResult

interface StoredKey {
  kid: string
  generation: number
  algorithm: string
  public_jwk: string
  private_key: string | null
  created_at: string
  activates_at: string
  retires_at: string | null
}

/** Runs the CLI in `dir` with only the variables given (plus PATH and HOME). */
function runCli(dir: string, args: string[], algorithm: string): Promise<Result> {
  return runCliProcess(args, {
    cwd: dir,
    env: {
      NODE_ENV: 'test',
      SECRET_KEY: SECRET,
      DATA_DIR: dir,
      DATABASE_URL: `sqlite:///${path.join(dir, 'x.db')}`,
      LOG_LEVEL: 'silent',
      JWT_ALGORITHM: algorithm,
      ACCESS_TOKEN_EXPIRE_MINUTES: String(ACCESS_TOKEN_MINUTES),
    },
  })
}

/** A success: exit 0, nothing on stderr; answers the lines printed. */
function linesOf(result: Result): string[] {
  assert.equal(result.stderr, '', 'nothing on stderr')
  assert.equal(result.code, 0)
  return result.stdout.trimEnd().split('\n')
}

/** A refusal: exit `code`, nothing on stdout, exactly one line on stderr, `expected`. */
function assertRefused(result: Result, code: number, expected: string) {
  assert.equal(result.stdout, '', 'nothing on stdout')
  assert.equal(result.stderr, `${expected}\n`)
  assert.equal(result.code, code)
}

/** Every stored key, by generation, read from the file without the application (read-only). */
function storedKeys(dir: string): StoredKey[] {
  const db = new Database(path.join(dir, 'x.db'), { readonly: true, fileMustExist: true })
  try {
    return db.prepare('select * from signing_keys order by generation').all() as StoredKey[]
  } finally {
    db.close()
  }
}

/** The line `keys list` prints for a stored key in `state`. */
function keyLine(key: StoredKey, state: string): string {
  const dates = [`published ${key.created_at}`, `signs from ${key.activates_at}`]
  if (key.retires_at !== null) dates.push(`verifies until ${key.retires_at}`)
  return `${String(key.generation).padStart(3)}  ${state.padEnd(8)}  ${key.algorithm.padEnd(6)}  ${key.kid}  ${dates.join(', ')}`
}

const ms = (iso: string | null) => new Date(iso!).getTime()

/**
 * The stored key is an Ed25519 key whose kid is its RFC 7638 thumbprint, published without any
 * private member, and whose private key is stored encrypted (under the key derived from
 * SECRET_KEY, bound to `signing-key:<kid>`), never as a PEM, and is the pair of the public one.
 */
async function assertStoredEd25519(key: StoredKey) {
  assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/)
  const { x, ...members } = JSON.parse(key.public_jwk) as Record<string, string>
  assert.deepEqual(members, { kty: 'OKP', crv: 'Ed25519', kid: key.kid, alg: 'EdDSA', use: 'sig' })
  assert.match(x!, /^[A-Za-z0-9_-]{43}$/)
  assert.equal(await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: x! }, 'sha256'), key.kid)

  const sealed = key.private_key!
  assert.equal(sealed.includes('PRIVATE KEY'), false, 'not a PEM')
  assert.equal(sealed.startsWith('v1.'), true, sealed.slice(0, 20))
  const encryption = createDataEncryption({ current: deriveDataEncryptionKey(SECRET) })
  const pem = encryption.decrypt(sealed, `signing-key:${key.kid}`)
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/)
  const publicOfPrivate = createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' })
  assert.equal(publicOfPrivate.x, x, 'the private key is the pair of the published one')
}

describe('cli: keys, with JWT_ALGORITHM=EdDSA', () => {
  const dir = workDir()
  const run = (...args: string[]) => runCli(dir, args, 'EdDSA')
  let first: StoredKey
  let next: StoredKey

  test('keys list on a fresh database: one EdDSA key, generation 1, current, signing since it was made', async () => {
    const started = Date.now()
    const lines = linesOf(await run('keys', 'list'))
    const ended = Date.now()
    const keys = storedKeys(dir)
    assert.equal(keys.length, 1)
    first = keys[0]!
    assert.ok(ms(first.created_at) >= started && ms(first.created_at) <= ended, first.created_at)
    assert.equal(first.generation, 1)
    assert.equal(first.algorithm, 'EdDSA')
    assert.equal(first.retires_at, null)
    assert.equal(first.activates_at, first.created_at, 'the first key signs at once')
    assert.deepEqual(lines, [
      `  1  current   EdDSA   ${first.kid}  published ${first.created_at}, signs from ${first.created_at}`,
    ])
    await assertStoredEd25519(first)
  })

  rotationTests(dir, run, {
    first: () => first,
    setNext: (key) => (next = key),
    next: () => next,
  })

  test('keys bogus → exit 2 with one line naming the action', async () => {
    assertRefused(await run('keys', 'bogus'), 2, 'error: unknown keys action "bogus" (list or rotate)')
  })
})

function rotationTests(
  dir: string,
  run: (...args: string[]) => Promise<Result>,
  keys: { first: () => StoredKey; setNext: (key: StoredKey) => void; next: () => StoredKey },
) {
  test('keys rotate prints the new key as next, published now, signing 7 minutes later', async () => {
    const started = Date.now()
    const lines = linesOf(await run('keys', 'rotate'))
    const ended = Date.now()
    const stored = storedKeys(dir)
    assert.equal(stored.length, 2)
    const [first, next] = stored as [StoredKey, StoredKey]
    keys.setNext(next)
    assert.deepEqual({ ...first, retires_at: null }, keys.first(), 'the old key is unchanged but for its end')
    assert.equal(next.generation, 2)
    assert.equal(next.algorithm, 'EdDSA')
    assert.notEqual(next.kid, first.kid)
    assert.equal(next.retires_at, null)
    await assertStoredEd25519(next)
    assert.ok(ms(next.created_at) >= started && ms(next.created_at) <= ended, next.created_at)
    const activates = ms(next.activates_at)
    assert.ok(activates >= started + PUBLISH_AHEAD_MS && activates <= ms(next.created_at) + PUBLISH_AHEAD_MS)
    assert.equal(ms(first.retires_at), activates + VERIFY_AFTER_MS)
    assert.deepEqual(lines, [
      keyLine(next, 'next'),
      `Key ${next.kid} is published now and signs from ${next.activates_at}; the current key verifies until ${first.retires_at}.`,
    ])
  })

  test('keys list then shows the current key with its end and the next one', async () => {
    const lines = linesOf(await run('keys', 'list'))
    const [first, next] = storedKeys(dir) as [StoredKey, StoredKey]
    assert.deepEqual(lines, [keyLine(first, 'current'), keyLine(next, 'next')])
    assert.match(lines[0]!, / {2}1 {2}current {3}EdDSA {3}\S{43} {2}published .*, verifies until \S+Z$/)
    assert.deepEqual(next, keys.next())
  })

  test('a second keys rotate while a key waits → exit 1 with one line, and nothing is stored', async () => {
    const before = storedKeys(dir)
    const next = keys.next()
    assertRefused(
      await run('keys', 'rotate'),
      1,
      `error: Key ${next.kid} already waits to sign from ${next.activates_at}: rotate again after that`,
    )
    assert.deepEqual(storedKeys(dir), before)
  })
}

describe('cli: keys, with JWT_ALGORITHM=HS256', () => {
  const dir = workDir()
  const run = (...args: string[]) => runCli(dir, args, 'HS256')

  test('keys list says tokens are signed with SECRET_KEY, and no key is stored', async () => {
    assert.deepEqual(linesOf(await run('keys', 'list')), [
      'JWT_ALGORITHM is an HS algorithm: tokens are signed with SECRET_KEY, and no key is stored.',
    ])
    assert.deepEqual(storedKeys(dir), [])
  })

  test('keys rotate → exit 1 with one line naming SECRET_KEY, and nothing is stored', async () => {
    assertRefused(
      await run('keys', 'rotate'),
      1,
      'error: With JWT_ALGORITHM=HS256 the key is SECRET_KEY: nothing to rotate here. Choose an asymmetric JWT_ALGORITHM (EdDSA is recommended) to have rotating keys.',
    )
    assert.deepEqual(storedKeys(dir), [])
  })
})
