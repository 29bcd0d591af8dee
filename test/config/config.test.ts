import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'
import { buildApp } from '../../src/app.js'
import { HASHING_CONCURRENCY, hashingBound } from '../../src/auth/passwords.js'
import { ConfigError, loadConfig, readEnvFile } from '../../src/config.js'
import { DatabaseUrlError, describeTarget, parseDatabaseUrl } from '../../src/db/target.js'
import { testConfig } from '../support/app.js'

const SECRET = 'a-secret-key-of-more-than-32-bytes-0123456789'
/** A file that exists, for the variables that only check that their file does. */
const EXISTING_FILE = fileURLToPath(import.meta.url)

const tempDirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-config-'))
  tempDirs.push(dir)
  return dir
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** A valid test environment, with the given variables on top. */
function env(overrides: Record<string, string | undefined> = {}) {
  return { NODE_ENV: 'test', SECRET_KEY: SECRET, DATA_DIR: tempDir(), ...overrides }
}

/** Asserts that loading `vars` fails with a ConfigError of one line starting with `variable`. */
function assertConfigError(vars: Record<string, string | undefined>, variable: RegExp | string) {
  let caught: unknown
  try {
    loadConfig(vars)
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`)
  const message = caught.message
  assert.equal(message.includes('\n'), false, `the message is more than one line: ${message}`)
  const expected = typeof variable === 'string' ? new RegExp(`^${variable}\\b`) : variable
  assert.match(message, expected)
  return message
}

describe('loadConfig', () => {
  test('defaults: 127.0.0.1:8000, 15-minute access tokens, 14-day refresh tokens, HS256', () => {
    const config = loadConfig({ NODE_ENV: 'test', SECRET_KEY: SECRET, DATA_DIR: tempDir() })
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.port, 8000)
    assert.equal(config.accessTokenExpireMinutes, 15)
    assert.equal(config.refreshTokenExpireDays, 14)
    assert.equal(config.jwtAlgorithm, 'HS256')
    assert.equal(config.secretKey, SECRET)
    assert.deepEqual(config.corsOrigins, [])
    assert.equal(config.trustProxy, false)
    assert.equal(config.redisUrl, undefined)
  })

  test('the default database is a SQLite file in the data folder', () => {
    const dataDir = tempDir()
    const config = loadConfig({ NODE_ENV: 'test', SECRET_KEY: SECRET, DATA_DIR: dataDir })
    const target = parseDatabaseUrl(config.databaseUrl)
    assert.equal(target.engine, 'sqlite')
    assert.equal(path.resolve((target as { filename: string }).filename), path.join(dataDir, 'app.db'))
  })

  test('email links default to the pages under PUBLIC_URL, and can point at an app of its own', () => {
    const defaults = loadConfig(env({ PUBLIC_URL: 'https://api.example.com/' }))
    assert.equal(defaults.passwordResetUrl, 'https://api.example.com/reset-password?token={token}')
    assert.equal(defaults.emailVerificationUrl, 'https://api.example.com/verify-email?token={token}')
    const own = loadConfig(
      env({
        PASSWORD_RESET_URL: 'https://app.example.com/#/reset/{token}',
        EMAIL_VERIFICATION_URL: 'https://app.example.com/verify?t={token}',
      }),
    )
    assert.equal(own.passwordResetUrl, 'https://app.example.com/#/reset/{token}')
    assert.equal(own.emailVerificationUrl, 'https://app.example.com/verify?t={token}')
  })

  test('NODE_ENV defaults to development', () => {
    assert.equal(loadConfig({ SECRET_KEY: SECRET, DATA_DIR: tempDir() }).nodeEnv, 'development')
  })

  test('variables are read and converted', () => {
    const config = loadConfig(
      env({
        HOST: '0.0.0.0',
        PORT: '3000',
        ACCESS_TOKEN_EXPIRE_MINUTES: '5',
        REFRESH_TOKEN_EXPIRE_DAYS: '30',
        JWT_ALGORITHM: 'HS512',
        DATABASE_URL: 'postgres://app:pw@db.internal:5432/app',
        CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
        TRUST_PROXY: '10.0.0.0/8,loopback',
        LOG_LEVEL: 'warn',
        REDIS_URL: 'redis://cache:6379',
        PASSWORD_HASHING_CONCURRENCY: '3',
      }),
    )
    assert.equal(config.passwordHashingConcurrency, 3)
    assert.equal(loadConfig(env({})).passwordHashingConcurrency, undefined, 'the default bound')
    assert.equal(config.host, '0.0.0.0')
    assert.equal(config.port, 3000)
    assert.equal(config.accessTokenExpireMinutes, 5)
    assert.equal(config.refreshTokenExpireDays, 30)
    assert.equal(config.jwtAlgorithm, 'HS512')
    assert.equal(config.databaseUrl, 'postgres://app:pw@db.internal:5432/app')
    assert.deepEqual(config.corsOrigins, ['https://app.example.com', 'http://localhost:5173'])
    assert.deepEqual(config.trustProxy, ['10.0.0.0/8', 'loopback'])
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.redisUrl, 'redis://cache:6379')
  })

  test('PASSWORD_HASHING_CONCURRENCY bounds the hashes of the process the app runs in', async () => {
    const apps: Awaited<ReturnType<typeof buildApp>>[] = []
    try {
      apps.push(await buildApp(testConfig({ PASSWORD_HASHING_CONCURRENCY: '3' })))
      assert.equal(hashingBound(), 3)
      apps.push(await buildApp(testConfig()))
      assert.equal(hashingBound(), HASHING_CONCURRENCY, 'unset: the default')
    } finally {
      for (const app of apps) await app.close()
    }
  })

  describe('a bad value is one line that starts with the variable', () => {
    const cases: [string, Record<string, string | undefined>, RegExp | string][] = [
      ['PORT=abc', { PORT: 'abc' }, 'PORT'],
      ['PORT=70000', { PORT: '70000' }, 'PORT'],
      ['PORT=-1', { PORT: '-1' }, 'PORT'],
      ['SECRET_KEY shorter than 32 bytes', { SECRET_KEY: 'too-short-secret' }, 'SECRET_KEY'],
      [
        'NODE_ENV=production without SECRET_KEY',
        { NODE_ENV: 'production', SECRET_KEY: undefined },
        'SECRET_KEY',
      ],
      ['NODE_ENV=staging', { NODE_ENV: 'staging' }, 'NODE_ENV'],
      ['JWT_ALGORITHM=none', { JWT_ALGORITHM: 'none' }, 'JWT_ALGORITHM'],
      [
        'JWT_PRIVATE_KEY_FILE without JWT_PUBLIC_KEY_FILE',
        { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: EXISTING_FILE },
        'JWT_PUBLIC_KEY_FILE',
      ],
      [
        'JWT_PUBLIC_KEY_FILE without JWT_PRIVATE_KEY_FILE',
        { JWT_ALGORITHM: 'EdDSA', JWT_PUBLIC_KEY_FILE: EXISTING_FILE },
        'JWT_PUBLIC_KEY_FILE',
      ],
      [
        'a key file that does not exist',
        {
          JWT_ALGORITHM: 'EdDSA',
          JWT_PRIVATE_KEY_FILE: '/nonexistent/key.pem',
          JWT_PUBLIC_KEY_FILE: EXISTING_FILE,
        },
        'JWT_PRIVATE_KEY_FILE',
      ],
      ['JWT_KEY_ROTATION_DAYS=-1', { JWT_KEY_ROTATION_DAYS: '-1' }, 'JWT_KEY_ROTATION_DAYS'],
      ['DATABASE_URL=ftp://x', { DATABASE_URL: 'ftp://x' }, 'DATABASE_URL'],
      ['CORS_ORIGINS=*', { CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
      ['CORS_ORIGINS with a path', { CORS_ORIGINS: 'https://app.example.com/x' }, 'CORS_ORIGINS'],
      ['TRUST_PROXY=true', { TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
      ['LOG_LEVEL=loud', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      ['ACCESS_TOKEN_EXPIRE_MINUTES=0', { ACCESS_TOKEN_EXPIRE_MINUTES: '0' }, 'ACCESS_TOKEN_EXPIRE_MINUTES'],
      ['REDIS_URL=http://x', { REDIS_URL: 'http://cache:6379' }, 'REDIS_URL'],
      [
        'PASSWORD_HASHING_CONCURRENCY=0',
        { PASSWORD_HASHING_CONCURRENCY: '0' },
        'PASSWORD_HASHING_CONCURRENCY',
      ],
      [
        'PASSWORD_HASHING_CONCURRENCY=two',
        { PASSWORD_HASHING_CONCURRENCY: 'two' },
        'PASSWORD_HASHING_CONCURRENCY',
      ],
      ['METRICS_TOKEN shorter than 16 characters', { METRICS_TOKEN: 'short-token' }, 'METRICS_TOKEN'],
      ['METRICS_TOKEN with a space', { METRICS_TOKEN: 'a metrics token with spaces' }, 'METRICS_TOKEN'],
      [
        'PASSWORD_RESET_URL without {token}',
        { PASSWORD_RESET_URL: 'https://app.example.com/reset' },
        'PASSWORD_RESET_URL',
      ],
      [
        'EMAIL_VERIFICATION_URL that is not http(s)',
        { EMAIL_VERIFICATION_URL: 'javascript:alert({token})' },
        'EMAIL_VERIFICATION_URL',
      ],
      [
        'FIRST_ADMIN_EMAIL without password',
        { FIRST_ADMIN_EMAIL: 'admin@example.com' },
        /^FIRST_ADMIN_(PASSWORD|EMAIL)\b/,
      ],
    ]
    for (const [title, vars, variable] of cases) {
      test(title, () => {
        assertConfigError(env(vars), variable)
      })
    }

    test('key files with an HS algorithm are refused: that algorithm signs with SECRET_KEY', () => {
      const message = assertConfigError(
        env({
          JWT_ALGORITHM: 'HS256',
          JWT_PRIVATE_KEY_FILE: EXISTING_FILE,
          JWT_PUBLIC_KEY_FILE: EXISTING_FILE,
        }),
        'JWT_PRIVATE_KEY_FILE',
      )
      assert.match(message, /HS256 signs with SECRET_KEY/)
    })

    test('an asymmetric JWT_ALGORITHM needs no key files: the server makes its own key', () => {
      const config = loadConfig(env({ JWT_ALGORITHM: 'EdDSA' }))
      assert.equal(config.jwtAlgorithm, 'EdDSA')
      assert.equal(config.jwtPrivateKeyFile, undefined)
      assert.equal(config.jwtKeyRotationDays, 0)
    })

    test('a rejected METRICS_TOKEN is never repeated in the message', () => {
      const message = assertConfigError(env({ METRICS_TOKEN: 'secret-metrics' }), 'METRICS_TOKEN')
      assert.equal(message.includes('secret-metrics'), false)
    })

    test('a rejected SECRET_KEY is never repeated in the message', () => {
      const message = assertConfigError(env({ SECRET_KEY: 'short-but-secret' }), 'SECRET_KEY')
      assert.equal(message.includes('short-but-secret'), false)
    })
  })

  describe('development secret key', () => {
    test('without SECRET_KEY, a key of at least 32 bytes is generated once in DATA_DIR/secret_key (0600)', () => {
      const dataDir = path.join(tempDir(), 'not-yet-created')
      const generated: string[] = []
      const first = loadConfig(
        { NODE_ENV: 'development', DATA_DIR: dataDir },
        { onGeneratedSecret: (file) => generated.push(file) },
      )
      const file = path.join(dataDir, 'secret_key')
      assert.ok(Buffer.byteLength(first.secretKey) >= 32)
      assert.deepEqual(generated, [file])
      assert.equal(readFileSync(file, 'utf8').trim(), first.secretKey)
      assert.equal(statSync(file).mode & 0o777, 0o600)

      const second = loadConfig(
        { NODE_ENV: 'development', DATA_DIR: dataDir },
        { onGeneratedSecret: (f) => generated.push(f) },
      )
      assert.equal(second.secretKey, first.secretKey)
      assert.equal(generated.length, 1, 'the key is generated only once')
    })

    test('two data folders get two different keys', () => {
      const a = loadConfig({ NODE_ENV: 'development', DATA_DIR: tempDir() })
      const b = loadConfig({ NODE_ENV: 'development', DATA_DIR: tempDir() })
      assert.notEqual(a.secretKey, b.secretKey)
    })

    test('a stored key that is too short is replaced', () => {
      const dataDir = tempDir()
      writeFileSync(path.join(dataDir, 'secret_key'), 'short\n')
      const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: dataDir })
      assert.ok(Buffer.byteLength(config.secretKey) >= 32)
      assert.notEqual(config.secretKey, 'short')
    })

    test('production never generates a key', () => {
      const dataDir = tempDir()
      assertConfigError({ NODE_ENV: 'production', DATA_DIR: dataDir }, 'SECRET_KEY')
      assert.throws(() => statSync(path.join(dataDir, 'secret_key')), { code: 'ENOENT' })
    })

    test('a data folder that cannot be written is one line naming SECRET_KEY', () => {
      const notAFolder = path.join(tempDir(), 'a-file')
      writeFileSync(notAFolder, '')
      assertConfigError({ NODE_ENV: 'development', DATA_DIR: notAFolder }, 'SECRET_KEY')
    })
  })

  test('readEnvFile reads a .env file, and a missing file is empty', () => {
    const dir = tempDir()
    const file = path.join(dir, '.env')
    writeFileSync(file, '# comment\nPORT=9000\nHOST="0.0.0.0"\n')
    assert.deepEqual(readEnvFile(file), { PORT: '9000', HOST: '0.0.0.0' })
    assert.deepEqual(readEnvFile(path.join(dir, 'missing.env')), {})
  })
})

describe('parseDatabaseUrl', () => {
  test('sqlite:///relative/path.db is a path relative to the working folder', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:///relative/path.db'), {
      engine: 'sqlite',
      filename: 'relative/path.db',
    })
  })

  test('sqlite:////abs/path.db is an absolute path', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:////abs/path.db'), {
      engine: 'sqlite',
      filename: '/abs/path.db',
    })
  })

  test('sqlite::memory: is an in-memory database', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite::memory:'), { engine: 'sqlite', filename: ':memory:' })
  })

  for (const scheme of ['postgres', 'postgresql']) {
    test(`${scheme}:// is PostgreSQL (default port 5432)`, () => {
      const target = parseDatabaseUrl(`${scheme}://app:pw@db.internal/shop`)
      assert.equal(target.engine, 'postgres')
      assert.equal((target as { database: string }).database, 'shop')
      assert.equal((target as { host: string }).host, 'db.internal:5432')
    })
  }

  for (const scheme of ['mysql', 'mariadb']) {
    test(`${scheme}:// is MySQL/MariaDB (default port 3306)`, () => {
      const target = parseDatabaseUrl(`${scheme}://app:pw@db.internal/shop`)
      assert.equal(target.engine, 'mysql')
      assert.equal((target as { database: string }).database, 'shop')
      assert.equal((target as { host: string }).host, 'db.internal:3306')
    })
  }

  test('an explicit port and pool size are kept', () => {
    const target = parseDatabaseUrl('postgres://app:pw@db.internal:6543/shop?pool_size=3')
    assert.equal((target as { host: string }).host, 'db.internal:6543')
    assert.equal((target as { poolSize: number }).poolSize, 3)
  })

  test('the description of a target never shows its password', () => {
    const description = describeTarget(parseDatabaseUrl('postgres://app:hunter2-secret@db.internal/shop'))
    assert.match(description, /shop/)
    assert.equal(description.includes('hunter2-secret'), false)
  })

  const errors: [string, string][] = [
    ['sqlite:foo', 'not a SQLite URL'],
    ['sqlite://', 'an empty SQLite path'],
    ['postgres://db.internal:5432', 'no database name'],
    ['postgres://db.internal:5432/', 'an empty database name'],
    ['mysql://db.internal', 'no database name (MySQL)'],
    ['postgres://db.internal/shop?pool_size=0', 'a pool size of 0'],
    ['postgres://', 'no host'],
  ]
  for (const [url, title] of errors) {
    test(`${url}: ${title} → one line naming DATABASE_URL`, () => {
      assert.throws(
        () => parseDatabaseUrl(url),
        (error: unknown) =>
          error instanceof DatabaseUrlError &&
          error.message.startsWith('DATABASE_URL') &&
          !error.message.includes('\n'),
      )
    })
  }
})

describe('SESSION_MAX_LIFETIME_DAYS (the absolute end of a session)', () => {
  test('defaults to 30 days, and a value within 1..3650 is taken', () => {
    assert.equal(loadConfig(env()).sessionMaxLifetimeDays, 30)
    assert.equal(loadConfig(env({ SESSION_MAX_LIFETIME_DAYS: '7' })).sessionMaxLifetimeDays, 7)
  })

  for (const value of ['0', '-3', '3651', 'thirty', '2.5', '30d']) {
    test(`SESSION_MAX_LIFETIME_DAYS=${JSON.stringify(value)} is one line naming the variable`, () => {
      const message = assertConfigError(
        env({ SESSION_MAX_LIFETIME_DAYS: value }),
        'SESSION_MAX_LIFETIME_DAYS',
      )
      assert.match(message, /^-?\d+$/.test(value) ? /between 1 and 3650/ : /whole number/)
    })
  }
})
