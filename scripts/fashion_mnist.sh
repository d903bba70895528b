#!/bin/sh
# Make Fashion-MNIST available: Debian's dataset-fashion-mnist package when we are root and apt
# exists; otherwise kdzoo downloads it with torchvision into ./data on first use.
DEB_DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DEB_DIR/train-images-idx3-ubyte.gz" ]; then
    echo "Fashion-MNIST: using $DEB_DIR"
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Fashion-MNIST: installing the Debian package dataset-fashion-mnist"
    if apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
       { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }; then
        echo "Fashion-MNIST: using $DEB_DIR"
        exit 0
    fi
    echo "Fashion-MNIST: apt-get could not install dataset-fashion-mnist."
fi
echo "Fashion-MNIST: the Debian package is not available here (it needs root and apt)."
echo "               kdzoo demo will download it with torchvision into ./data instead (about 30 MB);"
echo "               tests that need the real files are skipped."
