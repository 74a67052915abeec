#!/usr/bin/env bash
# What the tests use as independent references and real components:
# astropy/numpy/pyarrow (FITS and Parquet cross-checks), scipy (astropy's
# crossmatch), scikit-learn (AUC reference), pillow (reads screenshots),
# moto[server] (an S3-compatible server process), boto3; kubernetes-validate
# (the Kubernetes OpenAPI schemas, to check deploy/k8s/); and Chromium from
# Debian's packages, to open the validation report in a real browser.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt \
  'moto[server]>=5' boto3 scikit-learn pillow 'kubernetes-validate>=1.37'
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "install-test-deps: no chromium and not root; the report screenshot test will say SKIPPED" >&2
  fi
fi
