#!/usr/bin/env bash
# Starts compose.yaml for real with podman-compose: Postgres and Redis (the
# local stand-in images, ci-container/base-images.sh) and two instances of the
# service's image (ci-container/image-check.sh builds it; no build here). Both
# instances must answer /health, and they must share one database and one key
# set: an account made on the first gets tokens from the second, whose access
# token the first accepts; `podman-compose stop` must end both gracefully. Everything the project made (containers, their
# anonymous volumes, the named volume, the network) is removed on exit.
set -euo pipefail
# shellcheck source=ci-container/lib.sh
source "$(dirname "$0")/lib.sh"
export TOKEN_AUTH_IMAGE=${TOKEN_AUTH_IMAGE:-localhost/token-auth:ci}
PROJECT=token-auth-ci
LABEL=io.podman.compose.project=$PROJECT

free_port() { node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })"; }
AUTH_1_PORT=$(free_port)
AUTH_2_PORT=$(free_port)
while [ "$AUTH_2_PORT" = "$AUTH_1_PORT" ]; do AUTH_2_PORT=$(free_port); done
SECRET_KEY=$(head -c 48 /dev/urandom | base64 -w0)
POSTGRES_PASSWORD=$(head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_')
export AUTH_1_PORT AUTH_2_PORT SECRET_KEY POSTGRES_PASSWORD

work=$(mktemp -d /var/tmp/ci-container-compose.XXXXXX)
# podman-compose prints every podman command it runs, with the environment
# (this run's random SECRET_KEY and password included): kept in a file, shown
# only when the check fails.
compose() {
  echo "+ podman-compose $*" >>"$work/compose.log"
  timeout -k 30 300 podman-compose -f "$PROJECT_DIR/compose.yaml" -p "$PROJECT" "$@" >>"$work/compose.log" 2>&1
}

# podman-compose 1.0.3's `down` removes containers without their anonymous
# volumes (redis's /data) and keeps the network: remove all by project label.
remove_project() {
  local ids
  ids=$(podman ps -aq --filter "label=$LABEL")
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    timeout 120 podman rm -f -v -t 10 $ids >/dev/null 2>&1 || true
  fi
  ids=$(podman volume ls -q --filter "label=$LABEL")
  # shellcheck disable=SC2086
  if [ -n "$ids" ]; then podman volume rm -f $ids >/dev/null 2>&1 || true; fi
  if podman network exists "${PROJECT}_default" 2>/dev/null; then
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
  fi
}
show_logs() {
  local name
  for name in $(podman ps -a --filter "label=$LABEL" --format '{{.Names}}'); do
    echo "---- $name: $(podman inspect --format '{{.State.Status}}, exit {{.State.ExitCode}}, {{.RestartCount}} restarts' "$name")" >&2
    podman logs --tail 40 "$name" >&2 || true
  done
}
ok=false
cleanup() {
  if [ "$ok" != true ]; then
    echo "---- podman-compose's output:" >&2
    grep -v 'unable to get systemd connection' "$work/compose.log" | tail -n 60 >&2 || true
    show_logs
  fi
  remove_project
  rm -rf "$work"
}
trap cleanup EXIT

remove_project # a previous run killed before its own cleanup
if ! podman image exists "$TOKEN_AUTH_IMAGE"; then
  cc_err "$TOKEN_AUTH_IMAGE is missing: ci-container/image-check.sh builds it"
  exit 1
fi

cc_log "podman-compose up (Postgres, Redis, auth-1 on :$AUTH_1_PORT, auth-2 on :$AUTH_2_PORT)"
started=$EPOCHREALTIME
# podman-compose 1.0.3 starts the services in depends_on's order but does not
# wait for `condition: service_healthy` (nor could it: no systemd, so no
# health-check timer). An instance that starts before Postgres accepts
# connections exits and is restarted (restart: unless-stopped).
compose up -d --no-build
for port in "$AUTH_1_PORT" "$AUTH_2_PORT"; do
  if ! cc_wait_http "http://127.0.0.1:$port/health" 240 >/dev/null; then
    cc_err "the instance on :$port did not answer /health within 240 s"
    exit 1
  fi
  up_seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo ":$port /health answered $(curl -fsS "http://127.0.0.1:$port/health") ($up_seconds s after podman-compose up began)"
done

for service in postgres redis; do
  timeout 60 podman healthcheck run "${PROJECT}_${service}_1" >/dev/null || {
    cc_err "$service's compose healthcheck failed"
    exit 1
  }
  echo "$service: healthy (its compose healthcheck)"
done

cc_log "one account across both instances"
email="ci-$(date +%s)-$RANDOM@example.com"
password="compose check $(head -c 9 /dev/urandom | base64 -w0)"
curl -fsS -o /dev/null "http://127.0.0.1:$AUTH_1_PORT/auth/signup" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"$password\"}"
echo "auth-1: signed up $email"
# First-party sign-in (DESIGN §3.16): the code from one instance, exchanged at the other, the token used at the first.
verifier=$(node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64url'))")
challenge=$(node -e "process.stdout.write(require('crypto').createHash('sha256').update(process.argv[1]).digest('base64url'))" "$verifier")
code=$(curl -fsS "http://127.0.0.1:$AUTH_2_PORT/oauth/authorize-challenge" -d client_id=mobile -d response_type=code \
  -d code_challenge="$challenge" -d code_challenge_method=S256 \
  --data-urlencode "username=$email" --data-urlencode "password=$password" | jq -er .authorization_code)
echo "auth-2: the authorization challenge endpoint gave a code"
access=$(curl -fsS "http://127.0.0.1:$AUTH_1_PORT/auth/token" -d grant_type=authorization_code -d client_id=mobile \
  -d code="$code" -d code_verifier="$verifier" | jq -er .access_token)
echo "auth-1: exchanged auth-2's code for an access token"
me=$(curl -fsS "http://127.0.0.1:$AUTH_2_PORT/users/me" -H "authorization: Bearer $access")
if ! jq -e --arg email "$email" '.. | strings | select(. == $email)' <<<"$me" >/dev/null; then
  cc_err "auth-2's /users/me with auth-1's token does not name $email: $me"
  exit 1
fi
echo "auth-2: /users/me accepted auth-1's access token"
for service in auth-1 auth-2; do
  echo "$service: $(podman inspect --format '{{.RestartCount}}' "${PROJECT}_${service}_1") restarts"
done

cc_log "podman-compose stop"
# (Not `down`: podman-compose 1.0.3's leaves redis's anonymous volume behind;
# the EXIT trap removes the project instead.)
compose stop -t 20
for service in auth-1 auth-2; do
  code=$(podman inspect --format '{{.State.ExitCode}}' "${PROJECT}_${service}_1")
  if [ "$code" != 0 ]; then
    cc_err "$service exited with $code on stop, not 0 (no graceful shutdown)"
    exit 1
  fi
done
echo "auth-1, auth-2: stopped gracefully (exit 0)"
ok=true
echo "ci-container: compose OK (both instances answered /health $up_seconds s after up began; one account across them)"
