/**
 * The real server (`node --import tsx src/server.ts`) as a child process, for tests that need a
 * process of its own: signals (SIGTERM, SIGKILL), a fault injected into it (LD_PRELOAD), its JSON
 * log lines on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { until } from './processes.js'

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
/** tsx by absolute URL, so that the server can run in a folder of its own (away from any .env). */
const TSX = import.meta.resolve('tsx')
const SECRET = 'server-process-secret-key-0123456789-abcdef'
/** Safety nets only: a hung server fails its test instead of hanging the suite. */
const START_TIMEOUT_MS = 60_000

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** A pino line as the server writes it. */
export interface LogLine {
  level: number
  msg: string
  reqId?: string
  err?: { type?: string; code?: string; message?: string }
  [field: string]: unknown
}

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams
  /** Resolves with the server's URL once it listens; rejects if it exits first or takes too long. */
  listening(): Promise<string>
  /** Its working folder; with its SQLite database `app.db` unless DATABASE_URL was given. */
  dir: string
  databaseFile: string
  url: string
  port: number
  output: { stdout: string; stderr: string }
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<Exit>
  /** The exit, once there is one. */
  exit?: Exit
  /** The JSON log lines written so far. */
  logLines(): LogLine[]
  /** Waits for the first log line that `match` accepts, and returns it. */
  waitForLog(what: string, match: (line: LogLine) => boolean): Promise<LogLine>
  /** Waits (bounded) for the process to exit. */
  waitForExit(timeoutMs?: number): Promise<Exit>
  /** Kills the process at once (no shutdown, no last write): as a crash would. */
  kill(): Promise<void>
  /** Kills the process if it still runs, and removes its folder if this module made it: for after(). */
  cleanUp(): Promise<void>
}

const running = new Set<ServerProcess>()

/** For after(): kills every server a test left running (and removes the folders made for them). */
export async function killServers() {
  for (const server of [...running]) await server.cleanUp()
}

export interface ServerProcessOptions {
  /** Its working folder (kept afterwards); by default a folder of its own, removed by cleanUp(). */
  cwd?: string
  /**
   * Only the given variables, besides PATH, HOME, HOST, PORT=0, NODE_ENV=test and LOG_LEVEL=silent:
   * for tests of configuration and start-up. By default a secret key, a SQLite file in the working
   * folder, JSON logs at info and no rate limits come too.
   */
  bare?: boolean
}

/**
 * Spawns the server with only the given variables (plus PATH, HOME and the defaults above), without
 * waiting for it: see `startServerProcess`, and `listening()` / `waitForExit()` on the result.
 */
export function spawnServerProcess(
  env: Record<string, string> = {},
  options: ServerProcessOptions = {},
): ServerProcess {
  const ownFolder = options.cwd === undefined
  const dir = options.cwd ?? mkdtempSync(path.join(tmpdir(), 'fastauth-process-'))
  const databaseFile = path.join(dir, 'app.db')
  const defaults = options.bare
    ? { LOG_LEVEL: 'silent' }
    : {
        LOG_LEVEL: 'info',
        SECRET_KEY: SECRET,
        DATABASE_URL: `sqlite:///${databaseFile}`,
        RATE_LIMIT_ENABLED: 'false',
      }
  const child = spawn(process.execPath, ['--import', TSX, SERVER], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      HOST: '127.0.0.1',
      PORT: '0',
      NODE_ENV: 'test',
      ...defaults,
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const output = { stdout: '', stderr: '' }
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk))
  const server = { child, dir, databaseFile, output, url: '', port: 0 } as ServerProcess
  running.add(server)
  server.exited = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => {
      server.exit = { code, signal }
      resolve(server.exit)
    }),
  )
  server.logLines = () =>
    output.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine)
  server.waitForLog = async (what, match) => {
    let found: LogLine | undefined
    await until(() => {
      if (server.exit) throw new Error(`the server exited while waiting for ${what}: ${output.stderr}`)
      found = server.logLines().find(match)
      return found !== undefined
    }, what)
    return found!
  }
  server.waitForExit = async (timeoutMs = 30_000) => {
    await until(() => server.exit !== undefined, `the server to exit; stderr: ${output.stderr}`, timeoutMs)
    return server.exit!
  }
  server.listening = async () => {
    await until(
      () => {
        if (server.exit)
          throw new Error(
            `the server exited (${JSON.stringify(server.exit)}) before listening: ${output.stderr}`,
          )
        return /listening on http:\/\//.test(output.stdout)
      },
      `the server to listen; stderr: ${output.stderr}`,
      START_TIMEOUT_MS,
    )
    server.url = /listening on (http:\/\/[^\s/]+)/.exec(output.stdout)![1]!
    server.port = Number(new URL(server.url).port)
    return server.url
  }
  server.kill = async () => {
    if (!server.exit) {
      child.kill('SIGKILL')
      await server.exited
    }
  }
  server.cleanUp = async () => {
    running.delete(server)
    await server.kill()
    if (ownFolder) rmSync(dir, { recursive: true, force: true })
  }
  return server
}

/** Spawns the server (see `spawnServerProcess`) and resolves once it listens. */
export async function startServerProcess(
  env: Record<string, string> = {},
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const server = spawnServerProcess(env, options)
  try {
    await server.listening()
  } catch (error) {
    await server.cleanUp()
    throw error
  }
  return server
}
