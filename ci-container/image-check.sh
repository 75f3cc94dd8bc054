#!/usr/bin/env bash
# Builds the Dockerfile from the build context .dockerignore admits (podman
# sends exactly that context, so the build stage compiles exactly those
# files: a file src/ needs but the context leaves out fails here), then runs
# the image as a user would, on its embedded database: /health must answer,
# the image's HEALTHCHECK must pass, dist/ must hold only src/ and dashboard/
# (no tests, benches or scripts), and `podman stop` must end it gracefully.
# The image stays tagged as $TOKEN_AUTH_IMAGE (ci-container/compose-check.sh
# runs it), its build stage as $TOKEN_AUTH_IMAGE-build: their layers are the
# next run's build cache; the images they replace and the container are removed.
# Needs the base image: ci-container/base-images.sh.
set -euo pipefail
# shellcheck source=ci-container/lib.sh
source "$(dirname "$0")/lib.sh"
IMAGE=${TOKEN_AUTH_IMAGE:-localhost/token-auth:ci}
NAME=token-auth-ci-image-$$
CI_LABEL=org.token-auth.ci=image-check

work=$(mktemp -d /var/tmp/ci-container-image.XXXXXX)
cleanup() {
  podman rm -f -v -t 5 "$NAME" >/dev/null 2>&1 || true
  # What a failed or superseded build left untagged (the layers under the two
  # tags are their parents, so they stay).
  podman image prune -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# A run killed before its own cleanup leaves its container: remove it.
stale=$(podman ps -aq --filter "label=$CI_LABEL")
# shellcheck disable=SC2086
if [ -n "$stale" ]; then podman rm -f -v $stale >/dev/null 2>&1 || true; fi

cc_npm_config "$work"
# --format docker: the OCI format drops HEALTHCHECK. --pull=never: the base is
# the local image. --network host: npm ci reaches the registry as the host does,
# through the CA bundle mounted (read-only, for the RUN steps only) at npm's
# global config folder. Intermediate layers are kept: the next run's cache.
build() {
  timeout 900 podman build --pull=never --network host --format docker \
    --volume "$work:/usr/local/etc:ro" "$@" "$PROJECT_DIR"
}
# Tags a fresh build and removes the image the tag named before (not the cache
# layers below it, which the new image shares).
retag() {
  local tag=$1 previous=$2 current
  current=$(cc_image_id "$tag")
  if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
}
previous_build=$(cc_image_id "$IMAGE-build" || true)
previous=$(cc_image_id "$IMAGE" || true)

# The build stage alone, tagged: the compile (tsc of src/, the dashboard's vite
# bundle) from exactly the files the build context admits.
cc_log "building the Dockerfile's build stage ($IMAGE-build)"
started=$SECONDS
build --target build -t "$IMAGE-build"
retag "$IMAGE-build" "$previous_build"
stage_seconds=$((SECONDS - started))

cc_log "building $IMAGE (the runtime stage; the build stage comes from the cache)"
build -t "$IMAGE"
retag "$IMAGE" "$previous"
build_seconds=$((SECONDS - started))
size=$(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }')
echo "image: built in $build_seconds s (the build stage $stage_seconds s), $size"

cc_log "dist/ in the image"
dist=$(timeout 120 podman run --rm --network none --no-healthcheck "$IMAGE" ls -A dist | tr '\n' ' ')
echo "dist/: $dist"
if [ "$dist" != "dashboard src " ]; then
  cc_err "dist/ must hold dashboard/ and src/ only (tsconfig.json compiles src/ alone), not: $dist"
  exit 1
fi

cc_log "running $IMAGE (embedded database) and waiting for /health"
port=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close() })")
# NODE_ENV=production (the image's) needs SECRET_KEY even on the embedded database.
cc_nosd timeout 120 podman run -d --name "$NAME" --label "$CI_LABEL" -p "127.0.0.1:$port:3000" \
  -e SECRET_KEY="$(head -c 48 /dev/urandom | base64 -w0)" "$IMAGE" >/dev/null
if ! health_seconds=$(cc_wait_http "http://127.0.0.1:$port/health" 180); then
  cc_err "/health did not answer within 180 s; the container's log:"
  podman logs --tail 80 "$NAME" >&2 || true
  exit 1
fi
echo "/health answered $(curl -fsS "http://127.0.0.1:$port/health") after $health_seconds s"

# The Dockerfile's HEALTHCHECK (no systemd here, so no timer runs it: run it once).
if ! timeout 60 podman healthcheck run "$NAME"; then
  cc_err "the image's HEALTHCHECK failed"
  podman logs --tail 40 "$NAME" >&2 || true
  exit 1
fi
echo "HEALTHCHECK: healthy"

# SIGTERM reaches the server (npm start execs it) and it closes gracefully: exit 0.
started=$EPOCHREALTIME
cc_nosd timeout 120 podman stop -t 30 "$NAME" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
stop_seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if [ "$code" != 0 ]; then
  cc_err "podman stop: the service exited with $code, not 0 (no graceful shutdown); its log:"
  podman logs --tail 40 "$NAME" >&2 || true
  exit 1
fi
echo "podman stop: exit 0 after $stop_seconds s"
echo "ci-container: image OK (build $build_seconds s, $size, /health after $health_seconds s, stop $stop_seconds s)"
