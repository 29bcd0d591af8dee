/** Running the CLI as a user would: a real process, in a folder of its own, with only the variables given. */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after } from 'node:test'

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
/** tsx by absolute URL, so that the CLI can run in a folder of its own (away from any .env here). */
const TSX = import.meta.resolve('tsx')
/** Safety net only: a hung CLI fails its test instead of hanging the suite. */
const TIMEOUT_MS = 60_000

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

const workDirs: string[] = []
after(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})

/** A temporary folder, removed after the file's tests. */
export function workDir(prefix = 'fastauth-cli-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix))
  workDirs.push(dir)
  return dir
}

/**
 * Runs `npm run cli -- <args>` in `cwd` with `env` (plus PATH, HOME and TMPDIR): its exit code,
 * signal and output. `input` goes to its stdin; `closeStdout` closes the reading end at once,
 * as `cli openapi | head` does.
 */
export function runCliProcess(
  args: string[],
  options: { cwd: string; env: Record<string, string>; input?: string; closeStdout?: boolean },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: TIMEOUT_MS,
      killSignal: 'SIGKILL',
    })
    let stdout = ''
    let stderr = ''
    if (options.closeStdout) child.stdout.destroy()
    else child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    child.stdin.on('error', () => {}) // the CLI may exit before reading its input
    child.stdin.end(options.input ?? '')
  })
}
