#!/usr/bin/env bash
# The test command: scripts/test.sh [pytest arguments...]
#
# On a fresh Debian 12 machine (as root, or with sudo) it provides what the tests need and
# runs every check: installs redis-server, Chromium and PostgreSQL 15 when missing, starts the
# PostgreSQL cluster 15/main, creates the test-only role and database (idempotent),
# installs the project with its test extras, then runs ruff, mypy and pytest.
# The exit code is non-zero when any step fails, including pytest collecting no tests (5).
#
# Environment:
#   CALLCENTER_TEST_POSTGRES_URL  PostgreSQL for the tests (default: the local test database)
#   CALLCENTER_REQUIRE_POSTGRES   set to 1 here: PostgreSQL tests fail instead of skipping
#   PYTHON                        interpreter to use (default: python3)
#   SKIP_PROVISION=1              skip apt and PostgreSQL setup (the services are ready)
#
# The test role's password is made at random on the first provisioning and kept outside the
# checkout, in ${XDG_CACHE_HOME:-~/.cache}/callcenter/test-db-password (no credential in git).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
TEST_ROLE=callcenter
TEST_DB=callcenter_test
PASSWORD_FILE="${XDG_CACHE_HOME:-${HOME}/.cache}/callcenter/test-db-password"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) for: $*"
        return 1
    fi
}

apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Lock::Timeout waits for another apt/dpkg (e.g. a background install) to finish.
    if [[ ${apt_updated} -eq 0 ]]; then
        as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
        apt_updated=1
    fi
    as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$@" >/dev/null
}

as_postgres() {
    # From / so psql does not complain about an unreadable working directory.
    (cd / && as_root runuser -u postgres -- "$@")
}

provision() {
    if ! command -v redis-server >/dev/null 2>&1; then
        log "installing redis-server"
        apt_install redis-server
    fi

    # test_deployment_files.py validates docker/compose.yaml (no Docker engine needed)
    if ! command -v docker-compose >/dev/null 2>&1; then
        log "installing docker-compose"
        apt_install docker-compose
    fi

    # the console's browser tests drive Debian's Chromium (never `playwright install`);
    # Noto CJK so pages and screenshots show Chinese, not boxes
    if [[ ! -x /usr/bin/chromium ]] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
        log "installing chromium and fonts-noto-cjk"
        apt_install chromium fonts-noto-cjk
    fi

    if ! command -v pg_ctlcluster >/dev/null 2>&1 \
        || ! pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2}' \
            | grep -qx "${PG_VERSION} ${PG_CLUSTER}"; then
        log "installing postgresql-${PG_VERSION}"
        apt_install "postgresql-${PG_VERSION}"
    fi

    if ! as_root pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" status >/dev/null 2>&1; then
        log "starting PostgreSQL ${PG_VERSION}/${PG_CLUSTER}"
        as_root pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" start
    fi
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p "${PG_PORT}" && break
        sleep 0.5
    done
    pg_isready -q -h 127.0.0.1 -p "${PG_PORT}" || {
        log "PostgreSQL does not answer on 127.0.0.1:${PG_PORT}"
        return 1
    }

    if [[ ! -s "${PASSWORD_FILE}" ]]; then
        mkdir -p "$(dirname "${PASSWORD_FILE}")"
        (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"${PASSWORD_FILE}")
    fi
    local password
    password="$(<"${PASSWORD_FILE}")"
    log "ensuring role ${TEST_ROLE} and database ${TEST_DB}"
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${TEST_ROLE}') THEN
        CREATE ROLE ${TEST_ROLE} LOGIN;
    END IF;
    ALTER ROLE ${TEST_ROLE} PASSWORD '${password}';
END
\$\$;
SELECT 'CREATE DATABASE ${TEST_DB} OWNER ${TEST_ROLE}'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${TEST_DB}')
\gexec
SQL
}

if [[ "${SKIP_PROVISION:-0}" != 1 ]]; then
    provision
fi

if [[ -z "${CALLCENTER_TEST_POSTGRES_URL:-}" ]]; then
    if [[ ! -s "${PASSWORD_FILE}" ]]; then
        log "no test database password in ${PASSWORD_FILE}: run scripts/test.sh once without SKIP_PROVISION"
        exit 1
    fi
    CALLCENTER_TEST_POSTGRES_URL="postgresql+psycopg://${TEST_ROLE}:$(<"${PASSWORD_FILE}")@127.0.0.1:${PG_PORT}/${TEST_DB}"
fi
export CALLCENTER_TEST_POSTGRES_URL
export CALLCENTER_REQUIRE_POSTGRES=1

log "installing the project with its test extras"
"${PYTHON}" -m pip install -q --root-user-action=ignore --disable-pip-version-check -e '.[test]'

log "ruff check"
"${PYTHON}" -m ruff check .
log "mypy"
"${PYTHON}" -m mypy

log "pytest $*"
status=0
"${PYTHON}" -m pytest "$@" || status=$?
if [[ ${status} -eq 5 ]]; then
    log "pytest collected no tests: that is a failure"
fi
exit "${status}"
