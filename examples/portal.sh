#!/usr/bin/env bash
# The seed's user-portal table ("Portal de usuario"), built with plain mtctl commands.
#
# Extension 40710, owned by user ana, has three phones, as `mtctl user phones ana` shows:
#   Linphone (no proxy)           position 0  order 0  disabled
#   VIVAit Call Business iOS      position 1  order 0  disabled
#   VIVAit Call Business Android  position 2  order 3  enabled, secure (provisionable by QR)
# ana has no Web Call, so --webcall-running changes nothing here.
#
#   mtctl ring-sim 40710
#     Only the Android app (40710:2) rings, in stage 1 (order 3); the caller sees the
#     extension's name, "Ana 40710". Linphone (40710:0) and iOS (40710:1) are listed as not
#     ringing (order-zero: order 0 is tested before disabled).
#   mtctl ring-sim 40710 --webcall-running
#     The same: only the Android app rings.
#
# The same table in the browser, where ana changes it herself (mtctl serve's /portal/):
#   mtctl config set portal.base_url http://127.0.0.1:8080/portal
#   mtctl serve --port 8080 &
#   mtctl user login-link ana      # open the printed link once, within 15 minutes
#
# Run against a fresh store: MTCTL_DATABASE_URL=sqlite:///portal.db bash examples/portal.sh
set -euo pipefail
mtctl db upgrade
# Secure phones get a system key, which needs the SIP domain (the digest realm).
mtctl config set sip.domain pbx.example.com
mtctl node add madrid
mtctl ext add 40710 --node madrid --name "Ana 40710"
mtctl phone add 40710 --position 0 --model "Linphone (no proxy)" --order 0 --disabled
mtctl phone add 40710 --position 1 --model "VIVAit Call Business iOS" --order 0 --disabled
mtctl phone add 40710 --position 2 --model "VIVAit Call Business Android" --order 3 --secure
mtctl user add ana --name "Ana García" --login 40710
