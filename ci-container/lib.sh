# Shared by the ci-container/*.sh scripts (sourced, not run). See
# .ci/README.md "Container image" for what they do and why.
# shellcheck shell=bash disable=SC2034 # the constants are for the scripts that source this

CI_CONTAINER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_DIR=$(cd "$CI_CONTAINER_DIR/.." && pwd)

# runc + cgroupfs, file events, ulimits under root's hard limit: the only
# settings with which podman runs containers on these machines.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$CI_CONTAINER_DIR/containers.conf}"

# The base images the Dockerfile and compose.yaml name. No registry can be
# reached here, so ci-container/base-images.sh makes them locally, from
# Debian's packages and the npm registry, under these exact names.
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
POSTGRES_IMAGE=docker.io/library/postgres:15-bookworm
REDIS_IMAGE=docker.io/library/redis:7-bookworm
# The label that says which recipe made a local base image (a sha256 over its
# recipe files and its parent image's ID); an image whose label differs is remade.
RECIPE_LABEL=org.token-auth.ci.recipe

cc_log() { printf '\n== container: %s\n' "$*"; }
cc_err() { printf 'ci-container: %s\n' "$*" >&2; }

# cc_retry N CMD...: a command that reaches the network (apt, npm), tried N times.
cc_retry() {
  local tries=$1 n=1
  shift
  until "$@"; do
    if [ "$n" -ge "$tries" ]; then return 1; fi
    cc_err "attempt $n of $tries failed: $*; retrying in $((n * 10)) s"
    sleep $((n * 10))
    n=$((n + 1))
  done
}

# Installs podman (with buildah's engine inside), runc, debootstrap and
# podman-compose from Debian when one is missing, and netavark + aardvark-dns:
# compose's services find one another by name through aardvark-dns.
cc_install_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v podman-compose >/dev/null 2>&1 || missing+=(podman-compose)
  [ -x /usr/lib/podman/netavark ] || missing+=(netavark)
  [ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
  cc_log "installing ${missing[*]}"
  cc_retry 3 apt-get update -qq || return 1
  cc_retry 3 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# With no systemd, podman logs "unable to get systemd connection" errors
# whenever a container with a health check starts or stops (it cannot set the
# check's timer; the checks run it by hand instead). cc_nosd CMD... runs CMD
# without those lines on its stderr.
cc_nosd() {
  "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
}

# A TERM (from `timeout`) or INT ends a script through its EXIT trap, which
# removes what the script started.
trap 'exit 143' TERM
trap 'exit 130' INT

# cc_recipe_hash PARENT_ID FILE...: the recipe label's value.
cc_recipe_hash() {
  local parent=$1
  shift
  { printf '%s\n' "$parent"; cat "$@"; } | sha256sum | cut -c1-64
}

# cc_image_recipe IMAGE: the recipe label of a local image, empty when absent.
cc_image_recipe() {
  podman image inspect --format "{{index .Labels \"$RECIPE_LABEL\"}}" "$1" 2>/dev/null || true
}

cc_image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

# cc_npm_config DIR: writes into DIR the host's CA bundle (the registry is
# reached through a TLS proxy whose CA only the host's bundle holds) and an
# npmrc naming it and the host's registry, to be mounted read-only at
# /usr/local/etc, npm's global config folder in the node image, for the
# Dockerfile's `npm ci` steps. Nothing of it stays in a layer.
cc_npm_config() {
  local dir=$1 cafile registry
  cafile=$(npm config get cafile 2>/dev/null || true)
  if [ -z "$cafile" ] || [ "$cafile" = null ] || [ "$cafile" = undefined ] || [ ! -f "$cafile" ]; then
    cafile=/etc/ssl/certs/ca-certificates.crt
  fi
  registry=$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)
  cp "$cafile" "$dir/ca.crt"
  printf 'cafile=/usr/local/etc/ca.crt\nregistry=%s\nupdate-notifier=false\n' "$registry" >"$dir/npmrc"
}

# cc_wait_http URL SECONDS: waits until URL answers 200; prints the seconds taken.
cc_wait_http() {
  local url=$1 limit=$2 start=$EPOCHREALTIME
  while :; do
    if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
      awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }'
      return 0
    fi
    if awk -v a="$start" -v b="$EPOCHREALTIME" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then return 1; fi
    sleep 0.25
  done
}
