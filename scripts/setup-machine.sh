#!/usr/bin/env bash
# Makes this machine ready to run mpbus, idempotently: DPDK and the addon's build tools from
# Debian, 2 MB hugepages reserved, hugetlbfs mounted. Shipped in the package: `npx mpbus setup`
# runs it, and so does the repository's scripts/setup.sh (`npm run setup`). Arguments name
# extra Debian packages to install with the rest. Fast when all is already done. Without root it
# changes nothing and prints the commands a person must run (exit 1).
set -euo pipefail

MIN_PAGES=${MPBUS_HUGEPAGES:-1024}   # 2 MB pages: 2 GiB, room for several groups at once
# DPDK 22.11 and pkg-config for the addon's build; g++, make and python3 for node-gyp.
PKGS=(libdpdk-dev dpdk dpdk-dev pkg-config g++ make python3 "$@")
say() { [ -n "${MPBUS_SETUP_QUIET:-}" ] || echo "mpbus setup: $*"; }

missing_pkgs=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_pkgs+=("$p")
done
nr_pages=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
need_pages=0; [ "$nr_pages" -lt "$MIN_PAGES" ] && need_pages=1
need_mount=0; awk '$3=="hugetlbfs"{found=1} END{exit !found}' /proc/mounts || need_mount=1

# Without root, DPDK also needs the hugetlbfs mount to be writable by this user, or a directory
# of its own in it (the runtime option hugeDir names it).
need_chown=0
if [ "$(id -u)" -ne 0 ] && [ $need_mount -eq 0 ]; then
  mnt=$(awk '$3=="hugetlbfs"{print $2; exit}' /proc/mounts)
  if [ ! -w "$mnt" ] && [ -z "$(find "$mnt" -mindepth 1 -maxdepth 1 -type d -writable -print -quit 2>/dev/null)" ]; then
    need_chown=1
  fi
fi

if [ "$(id -u)" -ne 0 ] && { [ ${#missing_pkgs[@]} -gt 0 ] || [ $need_pages -eq 1 ] || [ $need_mount -eq 1 ] || [ $need_chown -eq 1 ]; }; then
  # Nothing has been changed yet: print what only root can do, then stop.
  user=$(id -un)
  {
    echo "mpbus setup: this machine is not ready for mpbus, and only root can fix it. Run:"
    [ ${#missing_pkgs[@]} -gt 0 ] && echo "  sudo apt-get update && sudo apt-get install -y ${missing_pkgs[*]}"
    [ $need_pages -eq 1 ] && echo "  echo $MIN_PAGES | sudo tee /proc/sys/vm/nr_hugepages"
    [ $need_mount -eq 1 ] && echo "  sudo mkdir -p /dev/hugepages && sudo mount -t hugetlbfs -o pagesize=2M,uid=$(id -u),gid=$(id -g) nodev /dev/hugepages"
    [ $need_chown -eq 1 ] && echo "  sudo chown $user: $mnt" &&
      echo "  (or, to keep the mount root's: sudo mkdir $mnt/$user && sudo chown $user: $mnt/$user, and start the primary with the option hugeDir: '$mnt/$user')"
    echo "then run this command again (as $user)."
  } >&2
  exit 1
fi

if [ ${#missing_pkgs[@]} -gt 0 ]; then
  say "installing ${missing_pkgs[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null
fi
if [ $need_pages -eq 1 ]; then
  say "reserving $MIN_PAGES hugepages of 2 MB (had $nr_pages)"
  echo "$MIN_PAGES" > /proc/sys/vm/nr_hugepages
  got=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$got" -lt 512 ]; then
    echo "mpbus setup: the kernel gave only $got hugepages (memory fragmented?); need at least 512. Try: echo 3 > /proc/sys/vm/drop_caches; echo $MIN_PAGES > /proc/sys/vm/nr_hugepages" >&2
    exit 1
  fi
fi
if [ $need_mount -eq 1 ]; then
  say "mounting hugetlbfs at /dev/hugepages"
  mkdir -p /dev/hugepages
  mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
fi
