/**
 * Every environment variable the server reads, in the groups of .env.example. loadConfig reads
 * them in this order; `npm run config:docs` writes .env.example and the README table from them.
 */
import type { Variable } from '../declare.js'
import type { ConfigField } from '../fields.js'
import { ACCOUNT_VARIABLES } from './accounts.js'
import { DATA_VARIABLES } from './data.js'
import { SERVICE_VARIABLES } from './services.js'
import { SERVER_VARIABLES } from './server.js'
import { TOKEN_VARIABLES } from './tokens.js'

export const VARIABLE_GROUPS = [
  { title: 'server', variables: SERVER_VARIABLES },
  { title: 'data', variables: DATA_VARIABLES },
  { title: 'tokens', variables: TOKEN_VARIABLES },
  { title: 'accounts', variables: ACCOUNT_VARIABLES },
  { title: 'services', variables: SERVICE_VARIABLES },
] as const

export const VARIABLES = VARIABLE_GROUPS.flatMap((group): readonly Variable<unknown>[] => group.variables)

type DeclaredVariable = (typeof VARIABLE_GROUPS)[number]['variables'][number]

/**
 * A Config field that no variable fills is a type error here, naming the field: loadConfig builds
 * the Config from the declarations alone.
 */
type Unfilled = Exclude<ConfigField, NonNullable<DeclaredVariable['fieldsFilled']>>
export const EVERY_FIELD_FILLED: [Unfilled] extends [never] ? true : { unfilled: Unfilled } = true
