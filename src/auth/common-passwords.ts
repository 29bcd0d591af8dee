import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
// Mozilla's list of common passwords (the one Firefox Accounts refuses), shipped as an npm package:
// refreshed by upgrading the package, never fetched over the network.
const commonPasswords = require('fxa-common-password-list') as { test(password: string): boolean }

/** Whether a password is too common to allow: on the list as typed, or in lower case. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords.test(password) || commonPasswords.test(password.toLowerCase())
}
