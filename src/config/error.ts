/** A configuration problem a person can fix; its message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}
