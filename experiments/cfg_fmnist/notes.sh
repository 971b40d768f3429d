#!/usr/bin/env bash
# RESULTS.md's section on the feature network: the same as images_fmnist's.
exec "$(dirname "$0")/../images_fmnist/notes.sh"
