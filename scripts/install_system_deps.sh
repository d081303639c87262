#!/usr/bin/env bash
# Installs the Debian packages the build, tests and demo need (only those that are missing).
set -euo pipefail
packages=(
  cmake ninja-build g++ ccache python3-venv
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  dataset-fashion-mnist
  zlib1g-dev
  libzip-dev  # a checkpoint's records checked against their CRC-32 before LibTorch reads them
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev  # image folders: decode, resize
  clang-19 libclang-rt-19-dev   # the sanitizer build and libFuzzer (`make asan`, `make fuzz`)
  libgloo-dev  # gloo headers: C++ Gloo process groups (csrc/module/process_group_factory.cpp)
  # Fonts as identities (scripts/make_font_identities.py, `make identities`): Latin text fonts.
  fontconfig fonts-noto-core fonts-texgyre fonts-urw-base35 fonts-liberation2 fonts-freefont-ttf
  fonts-roboto fonts-open-sans fonts-lato fonts-ebgaramond fonts-cantarell fonts-linuxlibertine
  fonts-crosextra-carlito fonts-crosextra-caladea fonts-hack fonts-firacode fonts-inconsolata
  fonts-dejavu-extra fonts-go fonts-league-spartan fonts-comic-neue fonts-cmu fonts-sil-gentium
  fonts-sil-charis fonts-cabin fonts-jetbrains-mono fonts-stix fonts-junicode fonts-oldstandard
  fonts-comfortaa fonts-quicksand
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
