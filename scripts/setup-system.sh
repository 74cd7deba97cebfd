#!/usr/bin/env bash
# Install and start the system parts rlvr's sandbox uses: bubblewrap and a Docker engine (and chromium, which
# the report's browser test drives headless).
# As root: apt-get installs what is missing and dockerd is started when no engine answers.
# Not root: prints what is missing and carries on (the tests that need them skip with a reason).
set -u
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v g++ >/dev/null 2>&1 || need+=(g++)
# headless browser of the report test (tests/report/test_report_browser.py)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ "$(id -u)" != 0 ]; then
  [ ${#need[@]} -gt 0 ] && echo "setup-system: not root; missing system packages: ${need[*]} (sudo apt-get install ${need[*]})"
  exit 0
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup-system: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || echo "setup-system: apt-get install ${need[*]} failed"
fi

# Start a Docker engine when none answers (CI machines have no init system running it).
if command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  echo "setup-system: starting dockerd"
  nohup dockerd >/tmp/rlvr-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || echo "setup-system: dockerd did not start (see /tmp/rlvr-dockerd.log)"
fi
exit 0
