#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmark need, and nothing twice:
# the npm packages (with the pinned Node.js that they bring), the Debian tools the
# streamer and the tests call (zstd, GNU tar, e2fsprogs, xfsprogs, lvm2, util-linux, fdisk, awscli, and
# Chromium, in which the tests open the reporter's HTML page),
# and the pinned moto emulator in a project-local Python virtual environment.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
say() { printf '[setup] %s\n' "$*" >&2; }

# 1. npm packages
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  # npm install, not npm ci: with omit-lockfile-registry-resolved set, npm leaves other
  # platforms' optional packages out of the lockfile and npm ci then refuses it.
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# 2. Debian packages for the data path and the tests
missing=()
command -v zstd >/dev/null || missing+=(zstd)
command -v tar >/dev/null || missing+=(tar)
command -v gzip >/dev/null || missing+=(gzip)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
# XFS partitions, and LVM volume groups on a partition (the streamer reads their metadata with lvm's reporting commands)
command -v mkfs.xfs >/dev/null && command -v xfs_io >/dev/null || missing+=(xfsprogs)
command -v lvm >/dev/null || missing+=(lvm2)
command -v losetup >/dev/null || missing+=(util-linux)
command -v mount >/dev/null || missing+=(mount)
command -v sfdisk >/dev/null || missing+=(fdisk)
command -v aws >/dev/null || missing+=(awscli)
command -v chromium >/dev/null || missing+=(chromium)
# PostgreSQL: pg_dump for the streamer's engine dumps, and the local server that stands in for restored DB instances
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v pg_dump >/dev/null || missing+=(postgresql)
# MariaDB: mariadb-dump for the streamer's MariaDB dumps, and the local server (mariadbd, mariadb-install-db) that stands in for restored MariaDB instances
[ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
command -v mariadb >/dev/null && command -v mariadb-dump >/dev/null || missing+=(mariadb-client)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 3. the emulator, pinned, in .venv
requirements="tools/setup/requirements.txt"
stamp=".venv/.requirements"
if [ ! -x .venv/bin/moto_server ] || ! cmp -s "$requirements" "$stamp"; then
  say "installing the AWS emulator into .venv ($(grep -v '^#' "$requirements" | tr '\n' ' '))"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
