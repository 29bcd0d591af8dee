import { ConfigError, loadConfig, readEnvFile, type Config } from './config.js'
import { buildApp } from './app.js'
import { parseDatabaseUrl, type DatabaseTarget } from './db/dialect.js'
import { describeStartupError } from './startup-errors.js'

const SHUTDOWN_DEADLINE_MS = 10_000

async function main() {
  let config: Config | undefined
  let target: DatabaseTarget | undefined
  try {
    config = loadConfig(
      { ...readEnvFile(), ...process.env },
      {
        onGeneratedSecret: (file) =>
          console.warn(
            `warning: SECRET_KEY is not set; generated a development key in ${file} (set SECRET_KEY in production)`,
          ),
      },
    )
    target = parseDatabaseUrl(config.databaseUrl)
    const app = await buildApp(config)
    await app.listen({ host: config.host, port: config.port })

    let closing = false
    const shutdown = (signal: string) => {
      if (closing) return
      closing = true
      app.log.info({ signal }, 'shutting down: finishing in-flight requests')
      const deadline = setTimeout(() => {
        console.error(`error: shutdown took longer than ${SHUTDOWN_DEADLINE_MS / 1000}s; exiting`)
        process.exit(1)
      }, SHUTDOWN_DEADLINE_MS)
      deadline.unref()
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(`error: shutdown failed: ${(error as Error).message}`)
          process.exit(1)
        },
      )
    }
    process.once('SIGTERM', () => shutdown('SIGTERM'))
    process.once('SIGINT', () => shutdown('SIGINT'))

    // Announced only once a signal shuts the server down gracefully: whoever waits for this line
    // (a supervisor, a test) may send SIGTERM at once.
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : config.port
    const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`
    console.log(`FastAuth API listening on ${base}  (docs: ${base}/docs, ${base}/redoc)`)
  } catch (error) {
    const line = describeStartupError(error, { target, host: config?.host, port: config?.port })
    if (line) {
      console.error(`error: ${line}`)
    } else {
      console.error(
        'error: the server could not start:',
        error instanceof ConfigError ? error.message : error,
      )
    }
    process.exit(1)
  }
}

await main()
