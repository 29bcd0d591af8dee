import { hash, verify } from '@node-rs/argon2'

/**
 * argon2id (the library's default algorithm) at OWASP's minimum cost: 19 MiB, 2 passes, 1 lane.
 * Hashing runs on libuv's thread pool, so the event loop stays free.
 */
const ARGON2_OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

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

export function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), ARGON2_OPTIONS)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, normalizePassword(password))
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
  dummyHash ??= hashPassword('dummy password that matches no account')
  await verifyPassword(await dummyHash, password)
  return false
}
