// No Docker engine runs where CI runs, so this file performs the Dockerfile's steps without one:
// it reads the Dockerfile, runs its build stage's commands in a clean copy of the build context,
// assembles the runtime stage from what that stage copies, and starts its CMD with its ENV.
// `docker build` itself is not exercised (nor the base image, apt-get, the non-root user).
// The build compiles better-sqlite3 from source and takes minutes; SKIP_CONTAINER_TEST=1 skips it.
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { freePort } from '../support/processes.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUNNING_MAJOR = Number(process.versions.node.split('.')[0])
/** The majors package.json's engines accept (`^20.19.0 || ^22.12.0 || >=24.0.0`: 20, 22, 24). */
const SUPPORTED_MAJORS = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
).engines.node
  .split('||')
  .map((range) => Number(/\d+/.exec(range)![0]))
const NEWEST_SUPPORTED_MAJOR = Math.max(...SUPPORTED_MAJORS)
const IMAGE_MAJOR = Number(/^FROM node:(\d+)/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))![1])

interface Instruction {
  keyword: string
  args: string
}
interface Stage {
  image: string
  name: string
  instructions: Instruction[]
}

/** Stages and their instructions; comments dropped, continuation lines joined, as Docker reads them. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `
      continue
    }
    const logical = `${pending}${line}`
    pending = ''
    const [, keyword, args] = /^(\w+)\s+(.*)$/s.exec(logical) ?? assert.fail(`not an instruction: ${logical}`)
    if (keyword!.toUpperCase() === 'FROM') {
      const [image, as, name] = args!.split(/\s+/)
      assert.equal(as?.toUpperCase(), 'AS', `FROM ${args}: every stage is named`)
      stages.push({ image: image!, name: name!, instructions: [] })
    } else {
      assert.ok(stages.length > 0, `${logical} before FROM`)
      stages.at(-1)!.instructions.push({ keyword: keyword!.toUpperCase(), args: args!.trim() })
    }
  }
  return stages
}

const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))
const SECRET = 'container-test-secret-0123456789-abcdefghijklmno' // 48 characters
/** Safety nets only: a hung step fails the test instead of hanging the suite. */
const STEP_TIMEOUT_MS = 20 * 60_000
const SERVER_TIMEOUT_MS = 60_000

function stage(name: string): Stage {
  const found = dockerfile.find((s) => s.name === name)
  assert.ok(found, `the Dockerfile has a stage named "${name}"`)
  return found
}

const children = new Set<ChildProcess>()
const workDirs: string[] = []
after(() => {
  for (const child of children) child.kill('SIGKILL')
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})

interface Run {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function start(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child)
      resolve({ code, signal })
    }),
  )
  return { child, output: () => output, exited }
}

async function waitFor<T>(promise: Promise<T>, ms: number, what: string, run?: Run): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      run?.child.kill('SIGKILL')
      reject(new Error(`${what} did not finish within ${ms} ms\n${run?.output().slice(-4000) ?? ''}`))
    }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

describe('Dockerfile: what the image is', () => {
  test('a build stage that installs with scripts on, builds, and prunes the devDependencies', () => {
    const build = stage('build')
    assert.match(build.image, /^node:\d+-bookworm-slim$/, 'an official Node image')
    assert.equal(stage('runtime').image, build.image, 'built and run on the same Node')
    assert.equal(
      IMAGE_MAJOR,
      NEWEST_SUPPORTED_MAJOR,
      "the image runs the newest Node major package.json's engines name",
    )
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((command) => {
      const index = runs.findIndex((run) => run.includes(command))
      assert.notEqual(index, -1, `the build stage runs "${command}"`)
      return index
    })
    assert.deepEqual(order, [...order].sort(), 'in this order')
    assert.ok(runs.some((run) => /\bpython3\b/.test(run) && /\bg\+\+/.test(run) && /\bmake\b/.test(run)))
    assert.equal(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').includes('ignore-scripts'), false)
  })

  test('a runtime stage with only dist/, node_modules and package.json, as a non-root user', () => {
    const runtime = stage('runtime')
    assert.equal(runtime.image, stage('build').image)
    const copies = runtime.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args)
    assert.deepEqual(copies.sort(), [
      '--from=build /app/dist ./dist',
      '--from=build /app/node_modules ./node_modules',
      '--from=build /app/package.json ./package.json',
    ])
    const users = runtime.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args)
    assert.equal(users.length, 1)
    assert.doesNotMatch(users[0]!, /^(root|0)(:|$)/)
    assert.deepEqual(envOf(runtime), {
      NODE_ENV: 'production',
      HOST: '0.0.0.0',
      PORT: '8000',
      DATA_DIR: '/data',
      MALLOC_MMAP_THRESHOLD_: '131072',
    })
    assert.deepEqual(argsOf(runtime, 'VOLUME'), ['["/data"]'])
    assert.deepEqual(argsOf(runtime, 'EXPOSE'), ['8000'])
    // The image runs the server as `npm start` does: the same node flags (its memory's bounds).
    const start = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
    ).scripts.start
    assert.match(start, /^node (--\S+ )*dist\/server\.js$/)
    assert.deepEqual(execForm(argsOf(runtime, 'CMD')[0]!), start.split(' '))
    const healthcheck = healthcheckCommand(runtime)
    assert.equal(healthcheck[0], 'node')
    assert.match(healthcheck.join(' '), /\/healthz/)
  })

  test('.dockerignore keeps secrets, databases and build output out of the context', () => {
    const entries = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n')
    for (const entry of ['.git', '.env', 'node_modules', 'dist', 'data', 'test-artifacts'])
      assert.ok(entries.includes(entry), `.dockerignore lists ${entry}`)
  })
})

function argsOf(s: Stage, keyword: string): string[] {
  return s.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
}

/** `ENV A=1 B="2"` → { A: '1', B: '2' } */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g))
    env[match[1]!] = match[2]!.replace(/^"(.*)"$/, '$1')
  return env
}

function envOf(s: Stage): Record<string, string> {
  return Object.assign({}, ...argsOf(s, 'ENV').map(parseEnv)) as Record<string, string>
}

function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args)
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `exec form: ${args}`)
  return parsed as string[]
}

function healthcheckCommand(s: Stage): string[] {
  const [args] = argsOf(s, 'HEALTHCHECK')
  const match = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/s.exec(args ?? '')
  assert.ok(match, `HEALTHCHECK … CMD ["…"]: ${args}`)
  return execForm(match[1]!)
}

describe(
  'Dockerfile: its steps, performed without Docker',
  {
    // The image's native modules are built for its Node: its steps are performed with that Node
    // (CI runs the suite on every supported major: `bash .ci/with-node <major> npm test`).
    skip:
      process.env.SKIP_CONTAINER_TEST === '1'
        ? 'SKIP_CONTAINER_TEST=1'
        : RUNNING_MAJOR !== IMAGE_MAJOR
          ? `the image runs Node ${IMAGE_MAJOR}, this is Node ${RUNNING_MAJOR}: bash .ci/with-node ${IMAGE_MAJOR} npm test`
          : false,
  },
  () => {
    let appDir: string
    let dataDir: string
    const timings: string[] = []
    /** The lockfile as installed (the working tree's may change while the build runs). */
    let lockfile = ''

    /** Runs the build stage in `tmp/build` and assembles the runtime stage in `tmp/app`. */
    before(
      async () => {
        const tmp = mkdtempSync(path.join(tmpdir(), 'fastauth-container-'))
        workDirs.push(tmp)
        const buildDir = path.join(tmp, 'build')
        appDir = path.join(tmp, 'app')
        mkdirSync(buildDir)
        mkdirSync(appDir)
        const context = buildContext()
        // The image's environment, not this test's (run-tests sets NODE_ENV=test).
        const env: NodeJS.ProcessEnv = { ...process.env, npm_config_prefer_offline: 'true' }
        delete env.NODE_ENV

        const build = stage('build')
        for (const { keyword, args } of build.instructions) {
          if (keyword === 'WORKDIR') assert.equal(args, '/app', 'COPY --from=build paths assume /app')
          else if (keyword === 'ENV') Object.assign(env, hostEquivalents(parseEnv(args)))
          else if (keyword === 'COPY') copyFromContext(context, args, buildDir)
          else if (keyword === 'RUN' && /^apt-get /.test(args))
            continue // the toolchain: present here
          else if (keyword === 'RUN' && /^npm install -g npm@/.test(args)) {
            const pinned = /npm@(\S+)/.exec(args)![1]
            const here = execFileSync('npm', ['--version'], { env, encoding: 'utf8' }).trim()
            assert.equal(
              here,
              pinned,
              `the Dockerfile pins npm ${pinned}; this test runs npm ${here}: align them`,
            )
          } else if (keyword === 'RUN') {
            lockfile ||= readFileSync(path.join(buildDir, 'package-lock.json'), 'utf8')
            const started = Date.now()
            const run = start('/bin/sh', ['-c', args], buildDir, env)
            const exit = await waitFor(run.exited, STEP_TIMEOUT_MS, `RUN ${args}`, run)
            assert.deepEqual(exit, { code: 0, signal: null }, `RUN ${args}\n${run.output().slice(-6000)}`)
            timings.push(`${args}: ${Math.round((Date.now() - started) / 1000)} s`)
          } else assert.fail(`the test does not know how to perform ${keyword} ${args} of the build stage`)
        }

        const runtime = stage('runtime')
        dataDir = path.join(tmp, 'data') // beside the app folder, as /data is beside /app
        for (const { keyword, args } of runtime.instructions) {
          if (keyword === 'RUN') {
            assert.match(
              args,
              /^mkdir -p \/data && chown \S+ \/data$/,
              'the runtime stage only prepares /data',
            )
            mkdirSync(dataDir)
          } else if (keyword === 'COPY') {
            const match = /^--from=build \/app\/(\S+) \.\/(\S+)$/.exec(args)
            assert.ok(match, `COPY --from=build /app/… ./…: ${args}`)
            renameSync(path.join(buildDir, match[1]!), path.join(appDir, match[2]!))
          }
        }
      },
      { timeout: STEP_TIMEOUT_MS * 3 },
    )

    test('the runtime holds dist/, production node_modules with better-sqlite3 compiled, and no devDependencies', (t) => {
      for (const line of timings) t.diagnostic(line)
      assert.deepEqual(readdirSync(appDir).sort(), ['dist', 'node_modules', 'package.json'])
      assert.ok(existsSync(path.join(appDir, 'dist', 'server.js')))
      assert.ok(
        existsSync(path.join(appDir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')),
      )
      for (const dev of ['typescript', 'tsx', 'eslint', 'prettier', 'typescript-eslint'])
        assert.equal(existsSync(path.join(appDir, 'node_modules', dev)), false, `${dev} is not in the image`)

      const lock = JSON.parse(lockfile) as {
        packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean; peer?: boolean }>
      }
      const present: string[] = []
      const missing: string[] = []
      for (const [location, entry] of Object.entries(lock.packages)) {
        if (!location.startsWith('node_modules/') || entry.optional || entry.devOptional || entry.peer)
          continue
        const exists = existsSync(path.join(appDir, location))
        if (entry.dev && exists) present.push(location)
        if (!entry.dev && !exists) missing.push(location)
      }
      assert.deepEqual(present, [], 'devDependencies (per package-lock.json) left in node_modules')
      assert.deepEqual(missing, [], 'production dependencies missing from node_modules')
    })

    test('its CMD serves /healthz and /readyz, passes its HEALTHCHECK, keeps data in DATA_DIR, exits 0 on SIGTERM', async () => {
      const runtime = stage('runtime')
      const port = await freePort()
      const server = startCmd(runtime, { HOST: '127.0.0.1', PORT: String(port), SECRET_KEY: SECRET })
      const base = await waitFor(listening(server), SERVER_TIMEOUT_MS, 'the server start', server)
      assert.equal(base, `http://127.0.0.1:${port}`)

      for (const route of ['/healthz', '/readyz']) {
        const response = await fetch(`${base}${route}`)
        assert.equal(response.status, 200, route)
        assert.deepEqual(await response.json(), { status: 'ok' })
      }
      assert.ok(existsSync(path.join(dataDir, 'app.db')), 'the SQLite database is in DATA_DIR (the volume)')
      assert.equal(await healthcheck(runtime, port), 0, 'the HEALTHCHECK passes')
      assert.equal(server.output().includes(SECRET), false, 'the secret is never printed')

      server.child.kill('SIGTERM')
      const exit = await waitFor(server.exited, SERVER_TIMEOUT_MS, 'the shutdown', server)
      assert.deepEqual(exit, { code: 0, signal: null }, server.output())
      assert.notEqual(await healthcheck(runtime, port), 0, 'the HEALTHCHECK fails once the server is gone')
    })

    test('without SECRET_KEY the production image refuses to start, in one line naming SECRET_KEY', async () => {
      const port = await freePort()
      const server = startCmd(stage('runtime'), { HOST: '127.0.0.1', PORT: String(port) })
      const exit = await waitFor(server.exited, SERVER_TIMEOUT_MS, 'the failed start', server)
      assert.notEqual(exit.code, 0)
      const lines = server.output().trim().split('\n')
      assert.equal(lines.length, 1, server.output())
      assert.match(lines[0]!, /^error: SECRET_KEY\b.*NODE_ENV=production/)
    })

    /** The container's environment: the image's ENV, DATA_DIR moved into the temporary folder. */
    function startCmd(runtime: Stage, overrides: Record<string, string>): Run {
      const [command, ...args] = execForm(argsOf(runtime, 'CMD')[0]!)
      assert.equal(command, 'node')
      return start(process.execPath, args, appDir, {
        PATH: process.env.PATH ?? '',
        ...envOf(runtime),
        DATA_DIR: dataDir,
        ...overrides,
      })
    }

    async function healthcheck(runtime: Stage, port: number): Promise<number | null> {
      const [command, ...args] = healthcheckCommand(runtime)
      assert.equal(command, 'node')
      const run = start(process.execPath, args, appDir, { PATH: process.env.PATH ?? '', PORT: String(port) })
      return (await waitFor(run.exited, SERVER_TIMEOUT_MS, 'the HEALTHCHECK', run)).code
    }
  },
)

async function listening(server: Run): Promise<string> {
  for (;;) {
    const match = /listening on (http:\/\/\S+?)\s/.exec(server.output())
    if (match) return match[1]!
    const exited = await Promise.race([server.exited, new Promise((r) => setTimeout(r, 100, null))])
    if (exited) throw new Error(`the server exited before listening: ${server.output()}`)
  }
}

/**
 * The build context: the working tree's tracked and untracked-but-not-ignored files (uncommitted
 * work included), which is what `docker build .` sends once .dockerignore has removed the rest.
 */
function buildContext(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  return listed
    .split('\0')
    .filter((file) => file !== '' && existsSync(path.join(ROOT, file)))
    .sort()
}

/** `COPY a b ./` and `COPY src ./src`, from the context into the build folder. */
function copyFromContext(context: string[], args: string, buildDir: string) {
  const parts = args.split(/\s+/)
  assert.ok(
    parts.every((part) => !part.startsWith('--')),
    `COPY without flags: ${args}`,
  )
  const destination = path.resolve(buildDir, parts.pop()!)
  for (const source of parts) {
    const files = context.filter((file) => file === source || file.startsWith(`${source}/`))
    assert.notEqual(files.length, 0, `COPY ${source}: not in the build context`)
    for (const file of files) {
      const target =
        file === source
          ? path.join(destination, path.basename(file))
          : path.join(destination, file.slice(source.length + 1))
      cpSync(path.join(ROOT, file), target)
    }
  }
}

/**
 * The image's Node lives in /usr/local (the official images' prefix); node-gyp finds its headers
 * through npm_config_nodedir. Here the same variable points at this Node's own prefix.
 */
function hostEquivalents(env: Record<string, string>): Record<string, string> {
  if (env.npm_config_nodedir !== undefined) {
    assert.equal(env.npm_config_nodedir, '/usr/local', 'the official Node images install Node in /usr/local')
    const prefix = path.dirname(path.dirname(process.execPath))
    assert.ok(
      existsSync(path.join(prefix, 'include', 'node', 'node.h')),
      `Node headers in ${prefix}/include/node`,
    )
    env.npm_config_nodedir = prefix
  }
  return env
}
