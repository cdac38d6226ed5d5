#!/usr/bin/env bash
# The documented entry point for deployment values: writes helm/values.deployment.yaml (the tag
# and the digests `invoke push` recorded) for one deploy. It delegates to `invoke values`, so the
# logic lives in one place; arguments pass through (e.g. --env staging --tag v1.2.3).
set -euo pipefail
cd "$(dirname "$0")/.."
exec invoke values "$@"
