/**
 * Storage faults injected for real, at the boundary between a server process and the OS:
 * test/support/fs-faults.c, compiled here at test time and preloaded (LD_PRELOAD) into the server,
 * intercepts libc's write and sync calls for the files of one folder.
 *
 * - An OS crash (power loss): the library keeps, for each file, a copy of its content at its last
 *   fsync; `loseUnsyncedWrites()` (once the process is killed) puts those copies in place and
 *   removes the files never synced. What is left is what a crash that lost every unsynced write
 *   would leave: a valid outcome of a real crash, and the harshest one.
 * - A full disk: `diskFull(true)` makes every write to the folder's files fail with ENOSPC, until
 *   `diskFull(false)`.
 *
 * Linux only (LD_PRELOAD, /proc/self/fd). Without a C compiler the tests that need it are skipped,
 * except in CI, where they fail: a skipped fault test is not a passed one.
 */
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SOURCE = fileURLToPath(new URL('./fs-faults.c', import.meta.url))
const SYNCED = '.synced'
const DISK_FULL_SWITCH = '.enospc'
const COMPILER = process.env.CC ?? 'cc'

function compilerMissing(): boolean {
  try {
    execFileSync(COMPILER, ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return true
  }
}

/** Why the storage fault tests cannot run here, or undefined when they can. */
function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'storage faults are injected with LD_PRELOAD, on Linux only'
  if (compilerMissing())
    return `no C compiler ("${COMPILER}") to build test/support/fs-faults.c: install gcc (apt-get install -y gcc) or set CC`
  return undefined
}

const reason = unavailable()
/** For `describe(…, { skip })`: a reason to skip, never in CI (there the build fails the test). */
export const fsFaultsSkip: string | false = reason && !process.env.CI ? reason : false

/** Compiles the library into a folder of its own; `remove()` deletes it. */
export function buildFsFaultsLibrary(): { file: string; remove(): void } {
  if (reason) throw new Error(reason)
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-fs-faults-'))
  const file = path.join(dir, 'fs-faults.so')
  try {
    execFileSync(COMPILER, ['-shared', '-fPIC', '-O2', '-Wall', '-o', file, SOURCE, '-ldl'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? ''
    throw new Error(`${COMPILER} could not build ${SOURCE}: ${stderr || (error as Error).message}`)
  }
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The storage faults of one folder, for a process started with `env`. */
export class StorageFaults {
  constructor(
    readonly dir: string,
    private readonly library: string,
  ) {}

  /** The variables that put a child process under these faults. */
  get env(): Record<string, string> {
    return { LD_PRELOAD: this.library, FS_FAULTS_DIR: this.dir }
  }

  /** Takes the folder's files as they are now as synced (e.g. a database closed cleanly). */
  assumeSynced() {
    for (const name of this.files())
      copyFileSync(path.join(this.dir, name), path.join(this.dir, name + SYNCED))
  }

  diskFull(full: boolean) {
    const file = path.join(this.dir, DISK_FULL_SWITCH)
    if (full) writeFileSync(file, '')
    else rmSync(file, { force: true })
  }

  /**
   * The folder as an OS crash leaves it: each file as it was at its last sync, files never synced
   * gone. Call it only once the process is dead. A deletion counts as durable (a file deleted after
   * its last sync stays deleted).
   */
  loseUnsyncedWrites() {
    this.diskFull(false)
    for (const name of this.files()) {
      const snapshot = path.join(this.dir, name + SYNCED)
      if (existsSync(snapshot)) renameSync(snapshot, path.join(this.dir, name))
      else rmSync(path.join(this.dir, name))
    }
    for (const name of readdirSync(this.dir)) if (name.endsWith(SYNCED)) rmSync(path.join(this.dir, name))
  }

  /** The folder's own files: not the snapshots, not the switch. */
  private files(): string[] {
    return readdirSync(this.dir).filter(
      (name) => name !== DISK_FULL_SWITCH && !name.endsWith(SYNCED) && !name.endsWith(`${SYNCED}.tmp`),
    )
  }
}
