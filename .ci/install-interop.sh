#!/usr/bin/env bash
# Installs the real mail servers the interop suite (test/interop/) starts as its own processes:
# Postfix (+ smtp-sink), Dovecot LMTP/SASL, aiosmtpd, redis and openssl; and Chromium, which
# test/interop/inbox.test.ts drives headless (playwright-core) to use the dev sink's web inbox.
# Idempotent and fast when everything is present: dpkg is asked first, apt only when something
# is missing. Must run as root (CI and the dev machines are root); without root it only reports.
set -euo pipefail

PKGS=(postfix dovecot-core dovecot-lmtpd python3 python3-aiosmtpd python3-dkim redis-server openssl bsdutils procps chromium)

missing=()
for p in "${PKGS[@]}"; do
  # `dpkg-query -W` alone succeeds for removed-but-configured packages; check the status word.
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-interop: all present (${PKGS[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-interop: missing ${missing[*]} and not root; install them by hand" >&2
  exit 1
fi

echo "install-interop: installing ${missing[*]}"

# Postfix asks its "General mail configuration type" question through debconf; "No configuration"
# leaves /etc/postfix/main.cf absent, which is what we want: the tests run private instances from
# their own config directories and never touch the system one.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections

# Keep package maintainer scripts from starting the system services (postfix on :25, dovecot on
# :143/:993 if it pulled imapd, redis on :6379). Docker images usually already ship a
# policy-rc.d that exits 101; only add (and later remove) one if there is none.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Belt and braces on machines with a real init where policy-rc.d was not honoured: stop the
# system services so nothing of Debian's own listens on 25/24/6379 while the suite runs.
for svc in postfix dovecot redis-server; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$svc" ]; then
    "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
  fi
done
# A system postfix master started from the default config dir would hold port 25.
if [ -f /var/spool/postfix/pid/master.pid ] && kill -0 "$(tr -d ' ' </var/spool/postfix/pid/master.pid)" 2>/dev/null; then
  postfix stop >/dev/null 2>&1 || true
fi

echo "install-interop: done"
