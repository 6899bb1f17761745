#!/usr/bin/env bash
# Makes a local PostgreSQL server available to the tests, idempotently: installs Debian's `postgresql`
# package when the server is missing, creates a cluster when there is none, starts it when it is down, and
# creates (or updates) the login role `consentry_test` with CREATEDB. Safe to run again and again, and when
# PostgreSQL is already running.
#
# Prints one line on stdout, for `eval "$(scripts/ensure-postgres.sh)"`:
#   export CONSENTRY_TEST_POSTGRES_URL=postgres://consentry_test:PASSWORD@127.0.0.1:PORT/postgres
# (an admin URL: the tests create a fresh database of their own from it and drop it afterwards).
# With `--env-file PATH` the same line is also written to PATH (mode 0600). Progress goes to stderr.
#
# Needs root, or sudo, to install and start the server. The role's password is random, generated once and
# kept in $CONSENTRY_TEST_STATE_DIR (default ~/.local/state/consentry) so that the URL stays the same.
set -euo pipefail

ROLE=consentry_test
ENV_FILE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --env-file) ENV_FILE="${2:?--env-file needs a path}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ensure-postgres: unknown argument $1 (use --env-file PATH)" >&2; exit 2 ;;
  esac
done

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Runs a command as root (directly, or through sudo).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "this step needs root ($*): run as root or install sudo"; fi
}

# Runs a command as the `postgres` system user (the superuser of a Debian cluster).
as_postgres() {
  if [[ $(id -un) == postgres ]]; then "$@"
  elif [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -u postgres "$@"
  else die "cannot act as the postgres user: run as root or install sudo"; fi
}

server_installed() {
  command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1 &&
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# 1. The server.
if ! server_installed; then
  log "PostgreSQL is not installed: installing Debian's postgresql package"
  command -v apt-get >/dev/null 2>&1 ||
    die "apt-get not found: install PostgreSQL yourself, or set CONSENTRY_TEST_POSTGRES_URL to a server's admin URL"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  server_installed || die "the postgresql package was installed but no server binaries were found"
fi

# 2. A cluster (pg_lsclusters: version, name, port, status, ...). Prefer one that is running.
clusters() { pg_lsclusters --no-header 2>/dev/null | awk 'NF >= 4 { print $1, $2, $3, $4 }'; }
cluster=$(clusters | awk '$4 == "online" { print; exit }')
[[ -n "$cluster" ]] || cluster=$(clusters | head -n 1)
if [[ -z "$cluster" ]]; then
  version=$(basename "$(dirname "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1)")")")
  log "no PostgreSQL cluster: creating ${version}/main"
  as_root pg_createcluster "$version" main >&2
  cluster=$(clusters | head -n 1)
  [[ -n "$cluster" ]] || die "pg_createcluster ran but pg_lsclusters shows no cluster"
fi
read -r version name port status <<<"$cluster"

# 3. Running.
if [[ "$status" != online* ]]; then
  log "starting cluster ${version}/${name} (port ${port})"
  as_root pg_ctlcluster "$version" "$name" start >&2
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" ||
  die "cluster ${version}/${name} does not accept connections on 127.0.0.1:${port}; see /var/log/postgresql/postgresql-${version}-${name}.log"

# 4. The test role, with a password kept between runs.
state_dir="${CONSENTRY_TEST_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/consentry}"
password_file="$state_dir/test-postgres-password"
mkdir -p "$state_dir"
if [[ ! -s "$password_file" ]]; then
  (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$password_file")
fi
password=$(<"$password_file")
[[ "$password" =~ ^[0-9a-f]{48}$ ]] || die "$password_file does not hold a generated password: delete it and run again"

(cd / && as_postgres psql -X -q -p "$port" -d postgres -v ON_ERROR_STOP=1 -v role="$ROLE" -v pw="$password" >&2) <<'SQL'
SELECT format('CREATE ROLE %I', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';
SQL

url="postgres://${ROLE}:${password}@127.0.0.1:${port}/postgres"
# 5. The role can log in over TCP with its password (as the tests will).
PGPASSWORD="$password" PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null ||
  die "role ${ROLE} cannot log in on 127.0.0.1:${port} with its password: check pg_hba.conf allows scram-sha-256 for host connections"
log "PostgreSQL ${version}/${name} is running on 127.0.0.1:${port}; role ${ROLE} is ready"

line="export CONSENTRY_TEST_POSTGRES_URL=${url}"
if [[ -n "$ENV_FILE" ]]; then
  (umask 077 && printf '%s\n' "$line" >"$ENV_FILE")
fi
printf '%s\n' "$line"
