#!/usr/bin/env bash
# What the tests use as independent references and real components, installed
# only where missing (a second run installs nothing and needs no network):
#   Python: astropy/numpy/pyarrow (FITS and Parquet cross-checks), scipy
#     (astropy's crossmatch), scikit-learn (AUC reference), pillow (reads
#     screenshots), moto[server] (an S3-compatible server process), boto3,
#     kubernetes-validate (the Kubernetes OpenAPI schemas, to check
#     deploy/k8s/), pyyaml (reads the Job in deploy/k8s/), legacystamps
#     (a published viewer client, run against serve-cutouts), torch (the
#     reader's PyTorch Dataset; PyPI's Linux wheel brings ~3 GB of CUDA
#     libraries, about 2 minutes, while cargo builds);
#   Debian packages: chromium (opens the validation report in a real
#     browser), time (GNU time), curl, iproute2 (ss), binutils (objcopy, for
#     the compose test's image).
# Exit status 1, naming what is missing, when something cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install-test-deps: $*" >&2; }

# --- Python packages: import name, then what pip installs ---------------------
pip_specs=(-r bench/requirements.txt 'moto[server]>=5' boto3 scikit-learn pillow
  'kubernetes-validate>=1.37' pyyaml requests 'legacystamps==1.2.2' torch)
missing_py=$(python3 - <<'EOF'
import importlib.metadata as md, importlib.util as iu
need = {"numpy": None, "astropy": None, "pyarrow": None, "scipy": None,
        "sklearn": None, "PIL": None, "moto": None, "boto3": None,
        "kubernetes_validate": None, "yaml": None, "requests": None,
        "flask": None, "legacystamps": "1.2.2", "torch": None}
missing = []
for module, version in need.items():
    if iu.find_spec(module) is None:
        missing.append(module)
    elif version and md.version(module) != version:
        missing.append(f"{module}=={version}")
print(" ".join(missing))
EOF
)
if [[ -n $missing_py ]]; then
  say "pip install (missing: $missing_py)"
  # Debian's own python3 refuses pip without this (PEP 668); other pythons ignore it.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
    --root-user-action=ignore "${pip_specs[@]}" \
    || { say "FAILED: pip could not install: $missing_py"; exit 1; }
fi

# --- Debian packages: command, then the package that has it -----------------
declare -A package_of=([chromium]=chromium [/usr/bin/time]=time [curl]=curl
  [ss]=iproute2 [objcopy]=binutils)
missing_deb=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || missing_deb+=("${package_of[$tool]}")
done
if (( ${#missing_deb[@]} )); then
  sudo=()
  if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "FAILED: missing ${missing_deb[*]} and not root: run 'sudo apt-get install ${missing_deb[*]}'"
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    say "FAILED: missing ${missing_deb[*]} and no apt-get here: install them with this system's package manager"
    exit 1
  fi
  say "apt-get install ${missing_deb[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing_deb[@]}" >/dev/null \
    || { say "FAILED: apt-get could not install ${missing_deb[*]}"; exit 1; }
fi
say "ready: python packages and ${!package_of[*]}"
