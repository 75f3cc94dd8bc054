#!/usr/bin/env bash
# The container step of .ci/run (issue 25): the Dockerfile builds, from
# exactly the build context .dockerignore admits, into an image whose
# /health answers, and compose.yaml's stack (Postgres, Redis, two instances)
# starts and serves. See .ci/README.md "Container image".
#   1. podman, runc, debootstrap, podman-compose, netavark, aardvark-dns from
#      Debian when missing (5-25 s, once per machine);
#   2. the base images, made locally, kept between runs (base-images.sh);
#   3. the service's image and its checks (image-check.sh);
#   4. compose.yaml started for real (compose-check.sh).
# Any failure fails the step, the environmental ones too (podman cannot be
# installed, a base image cannot be made): the step exists to prove the image,
# and skipping it would prove nothing. Network steps (apt, debootstrap, npm)
# are retried; every step has a timeout well above its cold time (50 min in
# all at worst; in practice 2-3.5 min on a fresh machine, under 1 min warm);
# every script removes its containers, volumes and networks on exit, signals
# included.
set -euo pipefail
# shellcheck source=ci-container/lib.sh
source "$(dirname "$0")/lib.sh"

step() {
  local name=$1 limit=$2 started=$SECONDS status=0
  shift 2
  timeout -k 60 "$limit" "$@" || status=$?
  if [ "$status" -eq 124 ]; then cc_err "$name: timed out after $limit s"; fi
  echo "ci-container: $name: $((SECONDS - started)) s, status $status"
  return "$status"
}

started=$SECONDS
if ! step "tools" 300 bash -c "source '$CI_CONTAINER_DIR/lib.sh' && cc_install_tools"; then
  cc_err "podman and its tools could not be installed from Debian (an environmental failure): the image cannot be proved"
  exit 1
fi
echo "$(podman --version), $(runc --version | head -n 1), podman-compose $(dpkg-query -W -f='${Version}' podman-compose 2>/dev/null || echo '(not from Debian)')"
# Cold 55-85 s, then under a second.
step "base images" 900 "$CI_CONTAINER_DIR/base-images.sh" all
# Cold 1-3 min, after a source change 20-30 s, unchanged about 10 s.
step "image" 1200 "$CI_CONTAINER_DIR/image-check.sh"
# 7-15 s.
step "compose" 600 "$CI_CONTAINER_DIR/compose-check.sh"
echo "ci-container: all container checks passed in $((SECONDS - started)) s"
