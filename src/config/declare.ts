/**
 * What a declared variable is: its name, the kind of value it takes, its default, the rules that
 * relate it to other variables, the Config fields it fills, and what the docs say about it.
 */
import type { ConfigField, FieldValue } from './fields.js'
import type { Reader, Refuse } from './readers.js'

export interface LoadOptions {
  /** Called once when a development secret key is generated, so the caller can warn. */
  onGeneratedSecret?: (file: string) => void
}

/** What a default or a rule may consult while the configuration is read. */
export interface Context {
  /** The value of another variable (set, or its default). */
  get<T>(variable: Variable<T>): T
  /** Throws the ConfigError of the variable being read: `NAME: problem`. */
  refuse: Refuse
  options: LoadOptions
}

/** A commented-out line of .env.example showing another useful value. */
export interface Example {
  value: string
  note?: string
}

interface Described {
  name: string
  /** The README's "meaning" (Markdown) and, without its Markdown, the comment in .env.example. */
  description: string
  examples?: readonly Example[]
}

/** A default that depends on other variables or on the environment, with how the docs say it. */
interface ComputedDefault<T> {
  default: (context: Context) => T
  /** Markdown, e.g. "`0`, `5000` in production". */
  documentedDefault: string
}

type Default<T> = { default: T } | ComputedDefault<T>

type Declaration<T> = Described &
  Default<T> & {
    type: Reader<T>
    /** A rule relating this variable's value to others: calls `context.refuse` when broken. */
    check?(value: T, context: Context): void
  }

/** Puts a variable's value (and whether it was set) into one Config field. */
export interface Fill<T> {
  field: ConfigField
  value(value: T, given: boolean): unknown
}

/**
 * `check` and `Fill.value` are methods, which TypeScript checks bivariantly: so variables of any
 * value types fit in the one `readonly Variable<unknown>[]` that loadConfig walks.
 */
export type Variable<T, F extends ConfigField = ConfigField> = Declaration<T> & {
  fills: readonly Fill<T>[]
  /** Never set: names the filled fields for the type check that every field is filled. */
  readonly fieldsFilled?: F
}

type FillFunctions<T, F extends ConfigField> = { [P in F]: (value: T, given: boolean) => FieldValue<P> }

/** A variable whose value goes unchanged into one field, whose type it must have. */
export function variable<P extends ConfigField>(
  declaration: Declaration<FieldValue<P>> & { fills: P },
): Variable<FieldValue<P>, P>
/** A variable that fills several fields, or converts its value on the way. */
export function variable<T, F extends ConfigField>(
  declaration: Declaration<T> & { fills: FillFunctions<T, F> },
): Variable<T, F>
export function variable<T>(
  declaration: Declaration<T> & {
    fills: ConfigField | Record<string, (value: T, given: boolean) => unknown>
  },
): Variable<T> {
  const { fills } = declaration
  return {
    ...declaration,
    fills:
      typeof fills === 'string'
        ? [{ field: fills, value: (value) => value }]
        : Object.entries(fills).map(([field, value]) => ({ field: field as ConfigField, value })),
  }
}

export function hasComputedDefault<T>(variable: Variable<T>): variable is Variable<T> & ComputedDefault<T> {
  return typeof variable.default === 'function'
}
