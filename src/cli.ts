import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { createAccount } from './services/accounts.js'
import { loadConfig, readEnvFile, type Config } from './config.js'
import { createMigrator, migrateToLatest } from './db/migrator.js'
import { openDatabase } from './db/open.js'
import { parseDatabaseUrl, type DatabaseTarget } from './db/target.js'
import { DomainError } from './services/errors.js'
import { keysCommand } from './cli/keys.js'
import { seedDatabase } from './cli/seed.js'
import { describeStartupError } from './process/startup-errors.js'

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  migrate [up]               apply every pending migration
  migrate status             list migrations and whether each is applied
  migrate down               revert the last migration
  create-admin --email E [--name N]
                             create an admin; the password is asked for (without echo) when
                             interactive, else read from ADMIN_PASSWORD or the first line of stdin
  openapi                    print the OpenAPI document (JSON)
  keys [list]                the keys access tokens are signed with, and their state
  keys rotate                publish the next signing key; it signs once every cache has it
  seed [--products N] [--users N] [--password P]
                             add demo data: N products (default 1000) owned by N users
                             (default 10) who share the password P (default "seed password")

Configuration comes from the environment and .env, as for the server (DATABASE_URL, …).`

class UsageError extends Error {}

/** parseArgs, with its (multi-line) complaints turned into one usage line. */
function parseOptions<T extends Record<string, { type: 'string' }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true }).values as { [K in keyof T]?: string }
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!)
  }
}

async function migrate(config: Config, action: string) {
  const { db } = openDatabase(parseDatabaseUrl(config.databaseUrl))
  try {
    if (action === 'up') {
      const { results = [] } = await migrateToLatest(db)
      if (results.length === 0) console.log('The database is up to date.')
      for (const result of results) console.log(`applied ${result.migrationName}`)
    } else if (action === 'status') {
      const migrations = await createMigrator(db).getMigrations()
      for (const migration of migrations)
        console.log(
          `${migration.executedAt ? `applied ${migration.executedAt.toISOString()}` : 'pending                      '}  ${migration.name}`,
        )
      const pending = migrations.filter((m) => !m.executedAt).length
      console.log(
        pending === 0
          ? 'The database is up to date.'
          : `${pending} migration(s) pending: run "npm run cli -- migrate".`,
      )
    } else if (action === 'down') {
      const migrator = createMigrator(db)
      const { error, results = [] } = await migrator.migrateDown()
      if (error) throw error
      for (const result of results) console.log(`reverted ${result.migrationName}`)
      if (results.length === 0) console.log('Nothing to revert.')
    } else {
      throw new UsageError(`unknown migrate action "${action}" (up, status or down)`)
    }
  } finally {
    await db.destroy()
  }
}

/** Reads a password: hidden prompt on a terminal; otherwise ADMIN_PASSWORD or one line of stdin. */
async function readPassword(): Promise<string> {
  if (process.env.ADMIN_PASSWORD) return process.env.ADMIN_PASSWORD
  if (!process.stdin.isTTY) {
    const lines = createInterface({ input: process.stdin })
    for await (const line of lines) {
      lines.close()
      return line
    }
    throw new UsageError('no password given: set ADMIN_PASSWORD or pipe it on stdin')
  }
  const ask = (prompt: string) =>
    new Promise<string>((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true })
      const output = rl as unknown as { _writeToOutput: (text: string) => void }
      process.stdout.write(prompt)
      // Echo nothing while the password is typed.
      output._writeToOutput = () => {}
      rl.question('', (answer) => {
        rl.close()
        process.stdout.write('\n')
        resolve(answer)
      })
    })
  const first = await ask('Password: ')
  const second = await ask('Repeat the password: ')
  if (first !== second) throw new UsageError('the two passwords differ')
  return first
}

/**
 * The whole application, imported only by the commands that need it: its routes and plugins take
 * a second to load, which `migrate`, `seed` and `help` would otherwise wait for.
 */
async function loadApp(config: Config) {
  const { buildApp } = await import('./app.js')
  return buildApp(config, { logger: false })
}

async function createAdmin(config: Config, args: string[]) {
  const values = parseOptions(args, { email: { type: 'string' }, name: { type: 'string' } })
  if (!values.email) throw new UsageError('create-admin needs --email')
  const password = await readPassword()
  const app = await loadApp(config)
  try {
    await app.ready()
    const admin = await createAccount(
      app.repos,
      {
        name: values.name ?? values.email.split('@')[0]!,
        email: values.email,
        password,
        role: 'admin',
        emailVerified: true,
      },
      config.passwordMinLength,
    )
    console.log(`Created admin ${admin.name} <${admin.email}> (id ${admin.id}).`)
  } catch (error) {
    if (error instanceof DomainError) {
      const issue = error.facts.issues?.[0]
      throw new UsageError(
        issue
          ? `${issue.field === 'password' ? 'the password' : issue.field} ${issue.message}`
          : error.detail,
      )
    }
    throw error
  } finally {
    await app.close()
  }
}

function wholeNumber(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) > max)
    throw new UsageError(`--${name} takes a whole number up to ${max}`)
  return Number(value)
}

async function seed(config: Config, args: string[]) {
  const values = parseOptions(args, {
    products: { type: 'string' },
    users: { type: 'string' },
    password: { type: 'string' },
  })
  const products = wholeNumber(values.products, 'products', 1000, 100_000_000)
  const users = wholeNumber(values.users, 'users', 10, 100_000)
  const password = values.password ?? 'seed password'
  if (products > 0 && users === 0) throw new UsageError('products need owners: --users must be at least 1')
  const { db, engine } = openDatabase(parseDatabaseUrl(config.databaseUrl))
  try {
    await migrateToLatest(db)
    const result = await seedDatabase(db, engine, { products, users, password })
    console.log(
      `Seeded ${users} users and ${result.products} products (tag ${result.tag}). Log in as ${result.userEmails[0] ?? '(none)'} with the password "${password}".`,
    )
  } finally {
    await db.destroy()
  }
}

async function keys(config: Config, action: string | undefined) {
  const app = await loadApp(config)
  try {
    await app.ready()
    for (const line of await keysCommand(app.signingKeys, action)) console.log(line)
  } catch (error) {
    if (error instanceof DomainError)
      throw error.kind === 'bad_request' ? new UsageError(error.detail) : new Error(error.detail)
    throw error
  } finally {
    await app.close()
  }
}

async function printOpenApi(config: Config) {
  // The document comes from the routes alone: no database is needed to print it.
  const app = await loadApp({ ...config, databaseUrl: 'sqlite::memory:', firstAdminEmail: undefined })
  await app.ready()
  process.stdout.write(`${JSON.stringify(app.swagger(), null, 2)}\n`)
  await app.close()
}

async function main(argv: string[]) {
  const [command, ...rest] = argv
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE)
    return
  }
  const config = loadConfig({
    ...readEnvFile(),
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
  })
  switch (command) {
    case 'migrate':
      return migrate(config, rest[0] ?? 'up')
    case 'create-admin':
      return createAdmin(config, rest)
    case 'openapi':
      return printOpenApi(config)
    case 'keys':
      return keys(config, rest[0])
    case 'seed':
      return seed(config, rest)
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`)
  }
}

// `npm run cli -- openapi | head` closes the pipe before everything is written: not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

try {
  await main(process.argv.slice(2))
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}`)
    process.exit(2)
  }
  let target: DatabaseTarget | undefined
  try {
    target = parseDatabaseUrl(loadConfig({ ...readEnvFile(), ...process.env }).databaseUrl)
  } catch {
    // the error itself is about the configuration
  }
  const line = describeStartupError(error, { target })
  console.error(`error: ${line ?? (error instanceof Error ? error.message : String(error))}`)
  process.exit(1)
}
