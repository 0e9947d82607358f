#!/usr/bin/env bash
# Installs the Debian packages the tests use (etcd, PostgreSQL) and moto in a virtualenv
# kept in the cache.
source "$(dirname "$0")/lib.sh"
need=()
command -v etcd >/dev/null || need+=(etcd-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v openssl >/dev/null || need+=(openssl)
# Debian's python3 makes virtualenvs only with python3-venv (ensurepip) installed.
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  step "installing Debian packages: ${need[*]}"
  apt_install "${need[@]}"
  step_done
fi
venv="$SECRETMOUNT_CACHE/moto-$MOTO_VERSION"
if [ ! -f "$venv/.complete" ]; then
  step "installing moto[server]==$MOTO_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$venv/.complete"
  step_done
fi
