import { ConfigError, loadConfig, readEnvFile, type Config } from './config.js'
import { buildApp } from './app.js'
import { parseDatabaseUrl, type DatabaseTarget } from './db/target.js'
import { developmentLogStream } from './process/development-logs.js'
import { describeShutdownFailure, shutDown } from './process/shutdown.js'
import { describeStartupError } from './process/startup-errors.js'

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
    // Readable lines in development on a terminal; JSON everywhere else.
    const stream = await developmentLogStream(config)
    const app = await buildApp(config, stream ? { logger: { level: config.logLevel, stream } } : {})
    await app.listen({ host: config.host, port: config.port })

    const timeouts = { drainMs: config.shutdownDrainMs, timeoutMs: config.shutdownTimeoutMs }
    let shuttingDown = false
    const shutdown = async (signal: NodeJS.Signals) => {
      if (shuttingDown) return
      shuttingDown = true
      const failure = describeShutdownFailure(
        await shutDown(app, { ...timeouts, signal }),
        timeouts.timeoutMs,
      )
      if (failure) console.error(`error: ${failure}`)
      process.exit(failure ? 1 : 0)
    }
    // once: a second signal ends the process at once, without waiting for the first to finish.
    process.once('SIGTERM', () => void shutdown('SIGTERM'))
    process.once('SIGINT', () => void shutdown('SIGINT'))

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
