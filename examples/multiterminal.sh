#!/usr/bin/env bash
# The seed's "Web Call modo multiterminal" walkthrough, built with plain mtctl commands.
#
# User ana logs in with 40710. The desk phone sits at position 0 and the Web Call phone at
# position 1 (order 1, not 0), and ana's Web Call mode is multiterminal: Web Call is one
# more phone of the extension.
#
#   mtctl ring-sim 40710
#     Web Call not running: only the desk phone (40710:0) rings; the caller sees the
#     extension's name, "Desk 40710". The Web Call phone is listed as not ringing
#     (webcall-not-running).
#   mtctl ring-sim 40710 --webcall-running
#     Desk phone and Web Call (40710:0, 40710:1) ring together in stage 1 (both order 1);
#     the caller sees the user's name, "Ana García".
#
# Run against a fresh store: MTCTL_DATABASE_URL=sqlite:///multiterminal.db bash examples/multiterminal.sh
set -euo pipefail
mtctl db upgrade
mtctl config set sip.domain pbx.example.com
mtctl node add madrid
mtctl ext add 40710 --node madrid --name "Desk 40710"
mtctl phone add 40710 --position 0 --model "Cisco 8841" --location Madrid --order 1
mtctl phone add 40710 --position 1 --model "VIVAit Call Web" --template webfon --order 1
mtctl user add ana --name "Ana García" --login 40710 \
  --webcall-mode multiterminal --webcall-ext 40710 --webcall-position 1
