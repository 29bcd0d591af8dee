/**
 * The FastAPI seed in `npm run bench` (issue 17): the app this project began from
 * (Hamedius/FASTApi_CRUD_Authentication), measured in the same alternating rounds as our server
 * and the reference when BENCH_SEED_DIR names a checkout of it. SQLite only: its database URL is
 * fixed to `sqlite:///./user.db` in user/database.py.
 *
 * Its `user/` package is copied into the bench's folder (the checkout is never written to), its
 * database made there by bench/fastapi-seed-db.py with its own models and hashing, and it runs as its
 * README runs it, without --reload: `python3 -m uvicorn user.main:app`, one worker, uvicorn's
 * default access log (to the log file).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync } from 'node:fs'
import path from 'node:path'
import { ROOT, startServer } from './processes.js'
import { logIn, type Credentials, type Routes, type SeedContender } from './scenarios.js'

/**
 * What the seed imports (multipart: FastAPI's form parsing, for its OAuth2 login form); Debian's
 * package for each is python3-<name>.
 */
const MODULES = ['fastapi', 'uvicorn', 'sqlalchemy', 'jose', 'passlib', 'bcrypt', 'multipart']

const SEED_ROUTES: Routes = { user: (id) => `/user/${id}`, login: '/login/' }

/** A Python interpreter that has every module the seed needs. */
export interface SeedPython {
  executable: string
  /** e.g. "Python 3.11.2, FastAPI 0.92.0, uvicorn 0.17.6, …" */
  versions: string
}

const PROBE = `
import importlib, json, sys
found, missing = {}, []
for name in sys.argv[1:]:
    try:
        found[name] = getattr(importlib.import_module(name), "__version__", "?")
    except ImportError:
        missing.append(name)
print(json.dumps({"executable": sys.executable, "python": sys.version.split()[0], "found": found, "missing": missing}))
`

/**
 * The first of BENCH_SEED_PYTHON, python3 on PATH and Debian's /usr/bin/python3 that has every
 * module: Debian's python3-* packages install for /usr/bin/python3, which a pyenv or virtualenv
 * python3 earlier on PATH does not see. Otherwise why none will do, naming what to install.
 */
export function findSeedPython(): SeedPython | { missing: string } {
  const candidates = [...new Set([process.env.BENCH_SEED_PYTHON, 'python3', '/usr/bin/python3'])]
  let closest: { executable: string; missing: string[] } | undefined
  for (const candidate of candidates) {
    if (!candidate) continue
    const probe = spawnSync(candidate, ['-c', PROBE, ...MODULES], { encoding: 'utf8', timeout: 30_000 })
    if (probe.status !== 0) continue
    const found = JSON.parse(probe.stdout) as {
      executable: string
      python: string
      found: Record<string, string>
      missing: string[]
    }
    if (found.missing.length === 0)
      return {
        executable: found.executable,
        versions: `Python ${found.python}, FastAPI ${found.found.fastapi}, uvicorn ${found.found.uvicorn}, SQLAlchemy ${found.found.sqlalchemy}, passlib ${found.found.passlib}, bcrypt ${found.found.bcrypt}`,
      }
    if (!closest || found.missing.length < closest.missing.length) closest = found
  }
  const packages = (closest?.missing ?? MODULES).map((name) => `python3-${name}`).join(' ')
  return {
    missing:
      `${closest ? `${closest.executable} lacks ${closest.missing.join(', ')}` : 'no python3 found'}; ` +
      `on Debian: apt-get install ${closest ? '' : 'python3 '}${packages} (or set BENCH_SEED_PYTHON to a python3 that has them)`,
  }
}

/** The checkout's commit, for the report; undefined when it is not a git checkout. */
function commitOf(checkout: string): string | undefined {
  try {
    return execFileSync('git', ['-C', checkout, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  } catch {
    return undefined
  }
}

/** Refuses a BENCH_SEED_DIR that does not hold the seed's app (a mistyped path should not pass silently). */
export function checkSeedCheckout(checkout: string) {
  if (!existsSync(path.join(checkout, 'user', 'main.py')))
    throw new Error(
      `BENCH_SEED_DIR=${checkout} has no user/main.py: it should be a checkout of the FastAPI seed`,
    )
}

export interface FastapiSeed extends SeedContender {
  /** For the method line: the command, versions, commit and data. */
  description: string
}

/**
 * The seed in `dir` (the engine's bench folder): its package copied, its database made with
 * `emails` as usernames (ids 1..n in order), one bcrypt hash of `password`, and `products` products.
 */
export function prepareFastapiSeed(options: {
  checkout: string
  dir: string
  python: SeedPython
  emails: string[]
  password: string
  products: number
}): FastapiSeed {
  const { checkout, dir, python, emails, password, products } = options
  const workDir = path.join(dir, 'fastapi-seed')
  // The checkout's own bytecode caches stay behind: Python writes its own beside the copy.
  cpSync(path.join(checkout, 'user'), path.join(workDir, 'user'), {
    recursive: true,
    filter: (source) => path.basename(source) !== '__pycache__',
  })
  const made = JSON.parse(
    execFileSync(python.executable, [path.join(ROOT, 'bench', 'fastapi-seed-db.py')], {
      cwd: workDir,
      env: { PATH: process.env.PATH ?? '' },
      input: JSON.stringify({ emails, password, products }),
      encoding: 'utf8',
    }),
  ) as { users: number; products: number; password_hash: string }
  const commit = commitOf(checkout)
  const cost = /^\$2[aby]?\$(\d+)\$/.exec(made.password_hash)?.[1]
  return {
    routes: SEED_ROUTES,
    description:
      `The FastAPI seed${commit ? ` (commit ${commit})` : ''}: \`python3 -m uvicorn user.main:app\` (one worker, uvicorn's default access log, to a file; ${python.versions}), ` +
      `on SQLite only (its database URL is fixed), on its own database (${made.users} users sharing one bcrypt hash${cost ? ` of cost ${cost}` : ''}, passlib's default; ${made.products.toLocaleString('en')} products), ` +
      `measured in the same alternating rounds where it has the route, with a token from its own /login/.`,
    start: (label) =>
      startServer({
        command: python.executable,
        args: (port) => ['-m', 'uvicorn', 'user.main:app', '--host', '127.0.0.1', '--port', String(port)],
        // It has no health route; its docs page answers once the app is up.
        readyPath: '/docs',
        env: {},
        logFile: path.join(dir, `${label}.log`),
        cwd: workDir,
      }),
    async credentials(origin): Promise<Credentials> {
      const token = await logIn(origin, SEED_ROUTES, emails[0]!, password)
      // Its GET /user/{id} checks the token only, not whose account it is: one token reads them all.
      return { token, userReads: emails.map((_, index) => ({ id: index + 1, token })) }
    },
  }
}
