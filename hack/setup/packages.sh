#!/usr/bin/env bash
# Installs the Debian packages the tests use (etcd, PostgreSQL) and moto in a virtualenv
# kept in the cache.
source "$(dirname "$0")/lib.sh"
if ! command -v etcd >/dev/null || ! command -v openssl >/dev/null || ! [ -x /usr/lib/postgresql/15/bin/postgres ]; then
  step "installing Debian packages: etcd-server postgresql openssl"
  apt_install etcd-server postgresql openssl
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
