import { type Context, hasComputedDefault, type LoadOptions, type Variable } from './declare.js'
import { ConfigError } from './error.js'
import type { Config } from './fields.js'
import type { Refuse } from './readers.js'
import { VARIABLES } from './variables/index.js'

export type Env = Record<string, string | undefined>

interface Reading {
  value: unknown
  /** The variable was set (not empty), rather than defaulted. */
  given: boolean
}

/**
 * Reads every declared variable, in the declared order, and puts each value into the fields it
 * fills. A default or rule that needs another variable reads it first; the first problem found
 * stops the reading with one line naming its variable.
 */
export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const readings = new Map<Variable<unknown>, Reading>()
  const reading = new Set<Variable<unknown>>()

  function read(variable: Variable<unknown>): Reading {
    const known = readings.get(variable)
    if (known) return known
    if (reading.has(variable)) throw new Error(`${variable.name}: its default depends on itself`)
    reading.add(variable)
    const result = readOne(env, variable, { get, options, refuse: refuseFor(variable) })
    readings.set(variable, result)
    return result
  }
  function get<T>(variable: Variable<T>): T {
    return read(variable).value as T
  }

  const config: Record<string, unknown> = {}
  for (const variable of VARIABLES) {
    const { value, given } = read(variable)
    for (const fill of variable.fills) setField(config, fill.field, fill.value(value, given))
  }
  // Every field is filled, and with its type: variables/index.ts and declare.ts check both.
  return config as unknown as Config
}

function readOne(env: Env, variable: Variable<unknown>, context: Context): Reading {
  const raw = valueSet(env[variable.name], variable.type.untrimmed === true)
  let value: unknown
  if (raw !== undefined) value = variable.type.parse(raw, context.refuse)
  else if (hasComputedDefault(variable)) value = variable.default(context)
  else value = variable.default
  variable.check?.(value, context)
  return { value, given: raw !== undefined }
}

/** The variable's text, or undefined when it is unset or empty (an empty line in .env is unset). */
function valueSet(raw: string | undefined, untrimmed: boolean): string | undefined {
  if (raw === undefined) return undefined
  const value = untrimmed ? raw : raw.trim()
  return value === '' ? undefined : value
}

function refuseFor(variable: Variable<unknown>): Refuse {
  return (problem) => {
    throw new ConfigError(`${variable.name}: ${problem}`)
  }
}

/** Sets a dotted field ('rateLimit.perIp') of the object under construction. */
function setField(target: Record<string, unknown>, field: string, value: unknown): void {
  const [head, ...rest] = field.split('.') as [string, ...string[]]
  if (rest.length === 0) {
    target[head] = value
    return
  }
  const inner = (target[head] ??= {}) as Record<string, unknown>
  setField(inner, rest.join('.'), value)
}
