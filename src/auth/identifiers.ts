import type { LoginLookup } from '../repositories/users.js'

/**
 * One stored form per email on every engine, and the form a login name is compared in (an email
 * or a user name): trimmed, NFKC, lower-cased.
 */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase()
}

/** The key that makes user names unique regardless of case (and of Unicode form). */
export function nameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase()
}

/**
 * Emails always contain "@" and names never do, so a login name is looked up among emails or
 * among names, never both: it cannot match two accounts. Had it matched a name too, whoever first
 * registered the name "carol@example.com" would have been let in by Carol's address (or have
 * locked Carol out of it). A name with "@" from before that rule can no longer log in by name;
 * its account still logs in by email.
 */
export function loginLookup(username: string): LoginLookup {
  const key = normalizeEmail(username)
  return { by: key.includes('@') ? 'email' : 'name', key }
}
