# syntax=docker/dockerfile:1
# FastAuth API: build in one stage, run the compiled server in a small, non-root one.
#
#   docker build -t fastauth-api .
#   docker run -e SECRET_KEY="$(openssl rand -base64 48)" -p 8000:8000 -v fastauth-data:/data fastauth-api
#
# SECRET_KEY is required: with NODE_ENV=production the server refuses to start without one of at
# least 32 bytes. test/process/container.test.ts performs this file's install, build and start steps
# without Docker; keep the two in step (the test reads this file and fails when they drift).

# ---- build: compile TypeScript and better-sqlite3, then drop the devDependencies
FROM node:24-bookworm-slim AS build

# better-sqlite3 is compiled from source (no prebuilt binary is downloaded), which needs a toolchain.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*

# The npm CI uses: it honours package.json's allowScripts (which install scripts may run).
RUN npm install -g npm@11.19.1

# Compile native addons against the image's own Node headers instead of downloading anything.
ENV npm_config_build_from_source=true \
  npm_config_nodedir=/usr/local

WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts stay on: better-sqlite3 builds its native module in its install script.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# ---- runtime: the compiled server, production node_modules and package.json, nothing else
FROM node:24-bookworm-slim AS runtime

# MALLOC_MMAP_THRESHOLD_: glibc serves each argon2id hash's 19 MiB from a fresh mapping and returns
# it when the hash is done, instead of keeping it in the arena of whichever of libuv's threads ran
# it (one retained 19 MiB per thread): the peak memory of a login storm, 154 → 142 MB
# (docs/performance.md).
ENV NODE_ENV=production \
  HOST=0.0.0.0 \
  PORT=8000 \
  DATA_DIR=/data \
  MALLOC_MMAP_THRESHOLD_=131072

# The SQLite database (the default) lives in /data; the "node" user of the base image owns only
# that folder, while the application files stay root-owned and read-only to it.
RUN mkdir -p /data && chown node:node /data

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist ./dist
COPY --from=build /app/node_modules ./node_modules

USER node
VOLUME ["/data"]
EXPOSE 8000

# node rather than curl (not in the slim image); PORT as the container was given it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself as the main process (not npm start: no build at runtime, and SIGTERM reaches the
# server directly, which then shuts down gracefully). That takes up to 15 s (SHUTDOWN_DRAIN_MS 5 s,
# then SHUTDOWN_TIMEOUT_MS 10 s), more than Docker's default 10 s before SIGKILL: run with
# --stop-timeout 20 (compose.yaml sets stop_grace_period). A Dockerfile cannot set it.
# The node flags are npm start's (package.json): V8's new space capped at 2 × 4 MB and its old
# space collected at 1.5× its live size, which keeps the peak memory under 150 MB (docs/performance.md).
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=50", "dist/server.js"]
