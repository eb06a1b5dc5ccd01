#!/usr/bin/env bash
# The seed's "Web Call modo exclusivo" walkthrough, built with plain mtctl commands.
#
# User ana logs in with 40710, which has a desk phone at position 0. Her Web Call lives on a
# second extension, 40711, with the Web Call phone at position 0 (webfon template), and her
# Web Call mode is exclusive: while Web Call runs, only Web Call rings.
#
#   mtctl ring-sim 40710
#     Web Call not running: only the desk phone (40710:0) rings; the caller sees the user's
#     name, "Ana García". The Web Call phone 40711:0 is listed as not ringing
#     (webcall-not-running).
#   mtctl ring-sim 40710 --webcall-running
#     Only the Web Call phone (40711:0) rings; the caller still sees "Ana García". The desk
#     phone 40710:0 is listed as not ringing (exclusive-webcall-active).
#
# Run against a fresh store: MTCTL_DATABASE_URL=sqlite:///exclusive.db bash examples/exclusive.sh
set -euo pipefail
mtctl db upgrade
mtctl node add madrid
# 1. The login extension, with a hardware phone at position 0.
mtctl ext add 40710 --node madrid --name "Desk 40710"
mtctl phone add 40710 --position 0 --model "Cisco 8841" --location Madrid
# 2. The Web Call (webfon) extension, with the Web Call phone at position 0.
mtctl ext add 40711 --node madrid --name "Web Call 40711"
mtctl phone add 40711 --position 0 --model "VIVAit Call Web" --template webfon
# 3 and 4. The user logs in with 40710 (and so owns it), Web Call on 40711, exclusive mode.
mtctl user add ana --name "Ana García" --login 40710 \
  --webcall-mode exclusive --webcall-ext 40711
