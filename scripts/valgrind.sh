#!/usr/bin/env bash
# valgrind for `make ci-counts` (bench/ab/counts.py), from Debian's packages.
# `scripts/valgrind.sh check`: exit 0 where valgrind is on PATH or can be installed here (root and
# apt-get), else one line saying why not and exit 2; changes nothing.
# `scripts/valgrind.sh install`: installs it if missing (and says so), or refuses as `check` does.
set -euo pipefail
refuse() { echo "valgrind: cannot count instructions here: $*" >&2; exit 2; }

check() {
  command -v valgrind >/dev/null && return 0
  [ "$(id -u)" = 0 ] || refuse "valgrind is not installed and this is not root (apt-get install valgrind needs root)"
  command -v apt-get >/dev/null || refuse "valgrind is not installed and there is no apt-get to install it"
}

install() {
  check
  command -v valgrind >/dev/null && return 0
  echo "valgrind: not installed; installing Debian's valgrind (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1; } \
    || refuse "apt-get install valgrind failed"
  echo "valgrind: installed $(valgrind --version)"
}

case "${1:-}" in
  check) check ;;
  install) install ;;
  *) echo "usage: scripts/valgrind.sh check|install" >&2; exit 2 ;;
esac
