/** What the repository tests share: times in whole seconds, a user row, and a meeting point for races. */
import type { Repositories } from '../../src/repositories/index.js'
import { uniqueUser } from '../support/app.js'

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
