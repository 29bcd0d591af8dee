import { availableParallelism } from 'node:os'
import { hash, verify } from '@node-rs/argon2'

/**
 * argon2id (the library's default algorithm) at OWASP's minimum cost: 19 MiB, 2 passes, 1 lane.
 * Hashing runs on libuv's thread pool, so the event loop stays free.
 */
const ARGON2_OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

/**
 * How many argon2id computations run at once: one core fewer than the machine has (at least one),
 * and fewer than libuv's threads. Each one holds a thread of that pool (4 by default,
 * UV_THREADPOOL_SIZE), a core and 19 MiB for several milliseconds. Unbounded, a burst of logins
 * queues dozens of hashes in the pool, and everything else that needs it waits behind the whole
 * queue — above all WebCrypto, through which jose checks the signature of every access token:
 * reads took hundreds of milliseconds during a login storm. Bounded to the cores, reads still
 * waited for the event loop's turn on cores busy hashing (p99 ×7–11 at rest on 2 cores). One core
 * left to the event loop keeps reads fast (and bounds the memory and CPU an attacker can make
 * hashing take), at the price of hashing throughput on small machines: on 2 cores, one hash at a
 * time. docs/performance.md has the figures. Further hashes wait here, in order.
 */
export function hashingConcurrency(cores: number, threadPoolSize: string | undefined): number {
  return Math.max(1, Math.min(cores - 1, (Number(threadPoolSize) || 4) - 1))
}

/** The bound when PASSWORD_HASHING_CONCURRENCY does not set one. */
export const HASHING_CONCURRENCY = hashingConcurrency(availableParallelism(), process.env.UV_THREADPOOL_SIZE)

let bound = HASHING_CONCURRENCY
let hashing = 0
const waiting: (() => void)[] = []

/** argon2id computations this process has completed, by kind (the password_hashes_total metric). */
const computations = { hash: 0, verify: 0 }

export interface PasswordHashing {
  /** Hashes computed (new passwords) and verifications completed (logins, password checks). */
  hash: number
  verify: number
  /** Computations running now (at most the bound, PASSWORD_HASHING_CONCURRENCY), and waiting for a slot. */
  running: number
  waiting: number
}

/**
 * The password work of this process: what logins cost its CPU, how many wait during a login
 * storm, and proof that a login for an unknown account costs a verification too (the timing
 * defence). A verification of a malformed hash fails at once and is not counted.
 */
export function passwordHashing(): PasswordHashing {
  return { ...computations, running: hashing, waiting: waiting.length }
}

/**
 * Sets how many computations run at once (PASSWORD_HASHING_CONCURRENCY), or back to the default
 * (undefined). For the whole process, as libuv's thread pool is. More than the default trades
 * the latency of other requests during a login storm for logins per second: with every core
 * hashing, reads wait for a core (docs/performance.md has the figures). A larger bound lets
 * waiting computations start at once; a smaller one lets those running finish.
 */
export function limitHashing(concurrency: number | undefined): void {
  bound = concurrency ?? HASHING_CONCURRENCY
  while (hashing < bound && waiting.length > 0) {
    hashing++
    waiting.shift()!()
  }
}

/** How many computations may run at once now. */
export const hashingBound = (): number => bound

async function withHashingSlot<T>(work: () => Promise<T>): Promise<T> {
  if (hashing >= bound) await new Promise<void>((resolve) => waiting.push(resolve))
  else hashing++
  try {
    return await work()
  } finally {
    // The slot passes straight to the next in line, if any and if the bound has not been lowered
    // meanwhile (so `hashing` stays the same); else it is given back.
    const next = hashing <= bound ? waiting.shift() : undefined
    if (next) next()
    else hashing--
  }
}

export const PASSWORD_MAX_LENGTH = 1024

/**
 * The same password typed on different keyboards or OSes can arrive in different Unicode forms
 * ("é" as one or two code points); NFKC makes them hash alike.
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC')
}

/** Length in code points, as a person counts characters (not UTF-16 units). */
export function passwordLength(password: string): number {
  return [...normalizePassword(password)].length
}

/**
 * What password_hash holds for an account without a password (one made by a sign-in with an
 * identity provider): not a hash, so no password ever verifies against it. A login with a password
 * then spends a dummy verification, as for an unknown account. A password reset sets a real one.
 */
export const NO_PASSWORD = '!'

/** Whether an account can log in with a password at all. */
export const hasPassword = (passwordHash: string) => passwordHash !== NO_PASSWORD

export function hashPassword(password: string): Promise<string> {
  return withHashingSlot(async () => {
    const hashed = await hash(normalizePassword(password), ARGON2_OPTIONS)
    computations.hash += 1
    return hashed
  })
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await withHashingSlot(async () => {
      const matches = await verify(passwordHash, normalizePassword(password))
      computations.verify += 1
      return matches
    })
  } catch {
    // A malformed stored hash is a failed login, never a 500.
    return false
  }
}

let dummyHash: Promise<string> | undefined

/**
 * Spends the same work as a real verification, for a login name that matches no account, so
 * that response time does not reveal which accounts exist.
 */
export async function verifyAgainstDummyHash(password: string): Promise<false> {
  // Stryker disable next-line StringLiteral: any fixed password makes the same dummy (its result is never used).
  dummyHash ??= hashPassword('dummy password that matches no account')
  await verifyPassword(await dummyHash, password)
  return false
}
