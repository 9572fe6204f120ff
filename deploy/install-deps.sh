#!/usr/bin/env bash
# Installs what building Nudge needs on Debian/Ubuntu: librdkafka and liblz4 headers, jemalloc (the
# service's allocator), pkg-config.
# Skips the install when they are already there, so it is cheap to run before every command.
set -euo pipefail
if pkg-config --exists rdkafka liblz4 jemalloc 2>/dev/null && [ -f /usr/include/librdkafka/rdkafka_mock.h ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to apt-get install librdkafka-dev liblz4-dev libjemalloc-dev pkg-config" >&2; exit 1; }
    SUDO="sudo"
fi
echo "install-deps: installing librdkafka-dev liblz4-dev libjemalloc-dev pkg-config" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq librdkafka-dev liblz4-dev libjemalloc-dev pkg-config >/dev/null
