#!/bin/sh
# As the official image: arguments that begin with a flag go to redis-server,
# which runs in the foreground with protected mode off.
set -eu
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
