#!/usr/bin/env bash
# Install the Debian packages the real-service tests need: OpenSSH (server + client),
# Slurm 22.05 with munge and slurmdbd, MariaDB for slurmdbd, nginx (TLS proxy in front of
# Triton) and openssl. Extra package names may be given as arguments.
#
# Idempotent: installs only what is missing and prints one line when nothing is.
# Non-interactive, and starts no service: the tests start their own daemons on free
# ports with their own configs (tests/services/), so a system slurmctld/sshd/mariadb
# started by a package's postinst would only get in the way. Without root and with
# packages missing it says what to run and exits 1.
set -euo pipefail

packages=(
    openssh-server openssh-client
    slurm-wlm slurm-client munge slurmdbd
    mariadb-server mariadb-client
    nginx openssl
    "$@"
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system: all ${#packages[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

# Keep postinst scripts from starting daemons, unless the machine already has a policy
# (Docker-style images ship one that answers 101 = "action forbidden").
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# added by hpctriton .ci/install-system.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system: installing ${missing[*]}"
apt-get update -qq -o DPkg::Lock::Timeout=120
apt-get install -y -q -o DPkg::Lock::Timeout=120 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
