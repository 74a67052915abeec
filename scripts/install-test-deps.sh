#!/usr/bin/env bash
# Python packages the tests use as independent references and real servers:
# astropy/numpy/pyarrow (FITS and Parquet cross-checks), scipy (astropy's
# crossmatch), moto[server] (an S3-compatible server process), boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt 'moto[server]>=5' boto3
