/** What the repository tests share: times in whole seconds, a user row, and a meeting point for races. */
import type { Repositories } from '../../src/repositories/index.js'
import { uniqueUser, type EngineContext } from '../support/app.js'

/** A whole second (every engine keeps at least that), and times counted from it. */
export const BASE = Math.floor(Date.now() / 1000) * 1000
export const at = (seconds: number) => new Date(BASE + seconds * 1000)

/** Inserts an active, unverified user with a unique name and email; answers its id. */
export async function insertPlainUser(repos: Repositories): Promise<number> {
  const { name, email } = uniqueUser()
  return repos.users.insert({
    name,
    name_key: name,
    email,
    password_hash: 'x',
    role: 'user',
    created_at: at(0),
    updated_at: at(0),
    is_active: true,
    email_verified: false,
  })
}

/** Resolves for every party once `parties` have arrived: two transactions start their race together. */
export function barrier(parties: number) {
  let arrived = 0
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return () => {
    arrived += 1
    if (arrived === parties) open()
    return opened
  }
}

/**
 * Runs `work` in `parties` transactions at once and answers what each returned, in order. On
 * PostgreSQL and MySQL each transaction first makes a read, so that it has begun, and waits for
 * the others: their next statements really race. SQLite runs one transaction at a time, so there
 * they simply queue (waiting inside one would wait forever).
 */
export function raceInTransactions<T>(
  ctx: EngineContext,
  parties: number,
  work: (repos: Repositories, party: number) => Promise<T>,
  /** A party whose transaction the database ended this way (a deadlock) lost: its outcome is `as`. */
  lost?: { by: (error: unknown) => boolean; as: T },
): Promise<T[]> {
  const allBegun = barrier(parties)
  return Promise.all(
    Array.from({ length: parties }, (_, party) =>
      ctx.app
        .transaction(async (repos) => {
          if (ctx.engine !== 'sqlite') {
            await repos.readinessProbe.ping()
            await allBegun()
          }
          return work(repos, party)
        })
        .catch((error: unknown) => {
          if (lost?.by(error)) return lost.as
          throw error
        }),
    ),
  )
}
