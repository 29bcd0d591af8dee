/**
 * The real server (`node --import tsx src/server.ts`) as a child process, for tests that need a
 * process of its own: a fault injected into it (LD_PRELOAD), a SIGKILL, its log lines on stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { until } from './processes.js'

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
/** tsx by absolute URL, so that the server may run in any folder. */
const TSX = import.meta.resolve('tsx')
/** A safety net only: a server that never listens fails its test instead of hanging the suite. */
const START_TIMEOUT_MS = 60_000

export interface LogLine {
  level: number
  msg: string
  reqId?: string
  err?: { type?: string; code?: string; message?: string }
  [field: string]: unknown
}

export class ServerProcess {
  private stdout = ''
  private stderr = ''
  readonly url: Promise<string>
  private readonly exited: Promise<unknown>

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk))
    this.exited = once(child, 'exit')
    this.url = this.listening()
  }

  /** Starts the server with only `env` (plus PATH, HOME and test defaults) and waits until it listens. */
  static async start(env: Record<string, string>, cwd: string): Promise<ServerProcess> {
    const child = spawn(process.execPath, ['--import', TSX, SERVER], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
        HOST: '127.0.0.1',
        PORT: '0',
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        ...env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const server = new ServerProcess(child)
    running.add(server)
    await server.url
    return server
  }

  private async listening(): Promise<string> {
    let url: string | undefined
    await until(
      () => {
        if (this.child.exitCode !== null || this.child.signalCode !== null)
          throw new Error(`the server exited before listening: ${this.stderr}`)
        url = /listening on (http:\/\/[^\s/]+)/.exec(this.stdout)?.[1]
        return url !== undefined
      },
      'the server listens',
      START_TIMEOUT_MS,
    )
    return url!
  }

  /** The JSON log lines written so far (pino, on stdout). */
  logLines(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine)
  }

  get output() {
    return { stdout: this.stdout, stderr: this.stderr }
  }

  /** Kills the process at once (no shutdown, no last write): as a crash would. */
  async kill() {
    running.delete(this)
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill('SIGKILL')
    await this.exited
  }
}

const running = new Set<ServerProcess>()

/** For after(): kills every server a test left running. */
export async function killServers() {
  for (const server of [...running]) await server.kill()
}
