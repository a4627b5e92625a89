#!/usr/bin/env bash
# One whole deploy pipeline, as a CI job runs it: open a session, record one image per location
# (one process per location, as parallel build jobs would), deploy and wait for every location
# to load. Run by scripts/bench.sh under hyperfine.
#
#   pipeline.sh ours|reference PROJECT_DIR STATEDIR LOCATIONS
#
# Needs DAGSTER_CLOUD_URL, DAGSTER_CLOUD_API_TOKEN and DAGSTER_CLOUD_ORGANIZATION in the
# environment, and DD_BIN / DD_REFERENCE naming the two CLIs.
set -euo pipefail
tool=$1 project=$2 statedir=$3 count=$4
tag=bench-$$
rm -rf "$statedir"
export DAGSTER_BUILD_STATEDIR="$statedir"
case "$tool" in
  ours)
    "$DD_BIN" start --dagster-cloud-yaml "$project/dagster_cloud.yaml" --project-dir "$project" \
      --deployment prod --deployment-type full
    for ((i = 0; i < count; i++)); do
      "$DD_BIN" set-build-output --location-name "$(printf 'loc-%04d' "$i")" --image-tag "$tag"
    done
    "$DD_BIN" deploy
    ;;
  reference)
    "$DD_REFERENCE" ci init --statedir "$statedir" --project-dir "$project" \
      --organization acme --deployment prod
    for ((i = 0; i < count; i++)); do
      "$DD_REFERENCE" ci set-build-output --statedir "$statedir" \
        --location-name "$(printf 'loc-%04d' "$i")" --image-tag "$tag"
    done
    "$DD_REFERENCE" ci deploy --statedir "$statedir"
    ;;
  *)
    echo "usage: pipeline.sh ours|reference PROJECT_DIR STATEDIR LOCATIONS" >&2
    exit 2
    ;;
esac
