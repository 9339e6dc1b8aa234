#!/usr/bin/env bash
# scripts/demo as on a fresh machine, timed (issue 23: under 5 minutes). Prints figures, asserts nothing.
#
# What is fresh: a clean clone of this repository (HEAD), a new virtual environment (pip's cache off: every wheel
# installed again), an empty lab cache (the servers' base root file system and the images' bases are built again)
# and an empty local Podman storage (every service image is built again). What is not: the Debian packages
# scripts/install would add, already on this machine; their install is timed apart, in a minbase bookworm chroot
# holding what this machine kind has before any project (python3-venv, curl, git, ...), with this machine's apt
# sources (services are not started there: a small underestimate). The two are added: an approximation of what a
# stock Debian 12 machine of this kind gives. pip keeps this machine's configuration, as such a machine has it.
#
# The demo's output, each line with the seconds since it started: /tmp/ruche-demo-fresh.log.
# Needs root (the lab), about 3 GB in /tmp, and no other lab on the demo's default subnet. Takes the demo's lab down
# at the end (its scratch directory is kept, with a warning, if that fails) and leaves /usr/local/bin/ruche alone.
#   bash benchmarks/demo_fresh.sh            # both figures
#   bash benchmarks/demo_fresh.sh --no-apt   # the demo alone
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
scratch=$(mktemp -d /tmp/ruche-demo-fresh.XXXXXX)
export RUCHE_LINK=no  # scripts/install leaves /usr/local/bin/ruche as it is (the demo calls its own venv's ruche)
cleanup() {
  if [ -x "$scratch/venv/bin/ruche" ] && [ -d "$scratch/ruche/demo-workspace/lab" ]; then
    if ! (cd "$scratch/ruche" && "$scratch/venv/bin/ruche" -w demo-workspace lab down >"$scratch/lab-down.log" 2>&1); then
      echo "warning: the demo's lab down failed (see $scratch/lab-down.log); $scratch is kept: run" \
        "'cd $scratch/ruche && $scratch/venv/bin/ruche -w demo-workspace lab down', then remove it" >&2
      return
    fi
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

apt_seconds=0
if [ "${1:-}" != "--no-apt" ]; then
  # the packages scripts/install adds to this machine kind for the demo (its list without what the kind has)
  chroot_dir="$scratch/apt-root"
  mmdebstrap --quiet --variant=minbase --include=python3-venv,curl,git,openssh-client,iproute2,ca-certificates,util-linux \
    bookworm "$chroot_dir" http://deb.debian.org/debian >/dev/null 2>&1
  cp /etc/apt/sources.list.d/*.sources "$chroot_dir/etc/apt/sources.list.d/" 2>/dev/null || true  # this machine's
  started=$(date +%s%N)
  chroot "$chroot_dir" apt-get update -q >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive chroot "$chroot_dir" apt-get install -y -q --no-install-recommends \
    systemd-container mmdebstrap docker-registry podman runc fuse-overlayfs uidmap dnsmasq-base pebble restic >/dev/null 2>&1
  apt_seconds=$(( ($(date +%s%N) - started) / 1000000000 ))
  rm -rf "$chroot_dir"
  echo "apt-get update and install of the demo's Debian packages: ${apt_seconds} s"
fi

git clone -q "$project" "$scratch/ruche"
mkdir -p "$scratch/storage/graph" "$scratch/storage/run"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
  "$scratch/storage/graph" "$scratch/storage/run" > "$scratch/storage.conf"
export CONTAINERS_STORAGE_CONF="$scratch/storage.conf" RUCHE_VENV="$scratch/venv" RUCHE_LAB_CACHE="$scratch/lab-cache"
export PIP_NO_CACHE_DIR=1
started=$(date +%s)
# each line of the demo's output with the seconds since it started, kept in /tmp/ruche-demo-fresh.log
set +e
(cd "$scratch/ruche" && scripts/demo 2>&1) | while IFS= read -r line; do
  printf '%4d %s\n' "$(( $(date +%s) - started ))" "$line"
done > /tmp/ruche-demo-fresh.log
status=${PIPESTATUS[0]}
set -e
demo_seconds=$(( $(date +%s) - started ))
[ "$status" -eq 0 ] || tail -n 40 /tmp/ruche-demo-fresh.log
echo "scripts/demo from a clean clone, new venv, empty lab cache and Podman storage: ${demo_seconds} s (exit ${status})"
total=$(( demo_seconds + apt_seconds ))
echo "on a stock machine of this kind: $((total / 60)) min $((total % 60)) s (aim: under 5 min)"
exit "$status"
