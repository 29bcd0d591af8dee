import path from 'node:path'
import { variable } from '../declare.js'
import { databaseUrl, folder, integer, oneOf } from '../readers.js'

export const DATA_DIR = variable({
  name: 'DATA_DIR',
  type: folder,
  default: () => path.resolve('data'),
  documentedDefault: '`./data`',
  fills: 'dataDir',
  description: 'the SQLite file and the generated development secret live here',
})

export const DATABASE_URL = variable({
  name: 'DATABASE_URL',
  type: databaseUrl,
  default: ({ get }) => `sqlite:///${path.relative(process.cwd(), get(DATA_DIR)) || '.'}/app.db`,
  documentedDefault: '`sqlite:///data/app.db`, following `DATA_DIR`',
  fills: 'databaseUrl',
  description: 'the database; its scheme selects the engine',
  examples: [
    { value: 'sqlite:////var/lib/fastauth/app.db', note: 'absolute path: four slashes' },
    { value: 'sqlite::memory:', note: 'nothing kept; for experiments' },
    { value: 'postgres://user:password@127.0.0.1:5432/app?pool_size=10' },
    { value: 'mysql://user:password@127.0.0.1:3306/app?pool_size=10', note: 'mariadb:// works too' },
  ],
})

export const DATABASE_QUERY_TIMEOUT_MS = variable({
  name: 'DATABASE_QUERY_TIMEOUT_MS',
  type: integer(100, 600_000),
  default: 5_000,
  fills: 'database.queryTimeoutMs',
  description:
    'PostgreSQL/MySQL: a query unanswered after this fails (503 with `Retry-After`) and its connection is dropped',
})

export const DATABASE_CONNECT_TIMEOUT_MS = variable({
  name: 'DATABASE_CONNECT_TIMEOUT_MS',
  type: integer(100, 600_000),
  default: 5_000,
  fills: 'database.connectTimeoutMs',
  description: 'waiting for a pooled database connection, or opening one, fails after this (503)',
})

export const SQLITE_SYNCHRONOUS = variable({
  name: 'SQLITE_SYNCHRONOUS',
  type: oneOf(['full', 'normal']),
  default: 'full',
  fills: 'database.sqliteSynchronous',
  description:
    '`full`: no acknowledged write is lost on an OS crash or power loss; `normal` is faster and **trades that away** (the last commits may be lost)',
})

export const DATA_VARIABLES = [
  DATA_DIR,
  DATABASE_URL,
  DATABASE_QUERY_TIMEOUT_MS,
  DATABASE_CONNECT_TIMEOUT_MS,
  SQLITE_SYNCHRONOUS,
]
