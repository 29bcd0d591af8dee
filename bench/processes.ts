/**
 * The processes of `npm run bench`: each server runs on its own (our server from dist/, the
 * reference compiled from bench/reference.ts, the FastAPI seed under uvicorn), so that server and
 * load generator never share an event loop. Also: readiness, peak memory, and cold start.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import ts from 'typescript'

export const ROOT = path.resolve(import.meta.dirname, '..')
/** Where compiled bench scripts go: inside the project, so that their imports resolve to its node_modules. */
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'fastauth-bench')

/**
 * A bench script as plain JavaScript, so that it starts as fast as our compiled server does (a
 * TypeScript loader would add its own start-up to the reference's cold start). The scripts import
 * only npm packages, so one file transpiles on its own.
 */
export function compileScript(name: string): string {
  const source = readFileSync(path.join(ROOT, 'bench', `${name}.ts`), 'utf8')
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: `${name}.ts`,
  })
  mkdirSync(CACHE, { recursive: true })
  const file = path.join(CACHE, `${name}.mjs`)
  writeFileSync(file, outputText)
  return file
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** The status of GET origin+path, or 0 when nothing answers. */
function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const request = get(url, { agent: false }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.on('error', () => resolve(0))
    request.setTimeout(2000, () => {
      request.destroy()
      resolve(0)
    })
  })
}

/** Linux's USER_HZ: /proc counts CPU time in hundredths of a second on every common platform. */
const CLOCK_TICKS = 100

export interface ServerProcess {
  origin: string
  pid: number
  /** Milliseconds from spawn to the first 200 of GET on its readiness path (ServerSpec.readyPath). */
  startMs: number
  /** The process's peak resident memory so far (VmHWM), in bytes. */
  peakRssBytes(): number
  /** CPU time the process has used so far, all threads, user and system, in milliseconds. */
  cpuMs(): number
  /** SIGTERM, then waits for the exit (a CPU profile is written then). */
  stop(): Promise<void>
}

export interface ServerSpec {
  /** The program: node (the bench's own) unless another is named (python3 for the FastAPI seed). */
  command?: string
  /**
   * Its arguments: for node, the script and any flags before it (e.g. --cpu-prof). A function of
   * the port when the server takes it as an argument (uvicorn's --port) rather than from PORT.
   */
  args: string[] | ((port: number) => string[])
  /** What answers 200 once the server is ready; /healthz unless the server has none. */
  readyPath?: string
  env: Record<string, string>
  /** Where the server's stdout and stderr go (its log lines). */
  logFile: string
  cwd: string
}

export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const readyUrl = `${origin}${spec.readyPath ?? '/healthz'}`
  const args = typeof spec.args === 'function' ? spec.args(port) : spec.args
  const log = openSync(spec.logFile, 'a')
  const started = performance.now()
  const child: ChildProcess = spawn(spec.command ?? process.execPath, args, {
    cwd: spec.cwd,
    env: { PATH: process.env.PATH ?? '', ...spec.env, PORT: String(port) },
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  let exited = false
  const exit = new Promise<void>((resolve) => {
    const end = () => {
      exited = true
      resolve()
    }
    child.once('exit', end)
    // A program that cannot be started (not found) emits 'error' and no 'exit'.
    child.once('error', end)
  })
  for (;;) {
    if (exited) throw new Error(`the server exited while starting; see ${spec.logFile}`)
    if ((await status(readyUrl)) === 200) break
    if (performance.now() - started > 30_000) {
      child.kill('SIGKILL')
      throw new Error(`the server did not answer within 30 s; see ${spec.logFile}`)
    }
    await sleep(2)
  }
  const startMs = performance.now() - started
  const pid = child.pid!
  return {
    origin,
    pid,
    startMs,
    peakRssBytes() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024
    },
    cpuMs() {
      // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised name.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
    },
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exit
      clearTimeout(timeout)
    },
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * The latency of one fsync after a 4 KiB append in `dir`, as SQLite's WAL does on each commit with
 * synchronous FULL (better-sqlite3's SQLite calls fsync, not fdatasync): p50 and p99 in ms over
 * `count` syncs. One commit per fsync is the ceiling of FULL's write rate.
 */
export function measureFsync(dir: string, count = 200): { p50: number; p99: number } {
  const file = path.join(dir, 'fsync-probe.bin')
  const block = Buffer.alloc(4096, 1)
  const descriptor = openSync(file, 'w')
  const times: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      writeSync(descriptor, block)
      const started = performance.now()
      fsyncSync(descriptor)
      times.push(performance.now() - started)
    }
  } finally {
    closeSync(descriptor)
    rmSync(file, { force: true })
  }
  const sorted = times.sort((a, b) => a - b)
  return { p50: median(sorted), p99: sorted[Math.floor(0.99 * (sorted.length - 1))]! }
}
