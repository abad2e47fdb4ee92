#!/bin/sh
# The "accept everything that answers" checker: it reads the card type with scriptor
# (pcsc-tools) and calls any card that answers 90 00 genuine. No authentication, no
# signature: the suite's report shows what such a reader lets through.
# Usage: accept_all.sh READER    Exit: 0 = answered (genuine), 3 = no answer (unreadable)
reader=$1
answer=$(printf '00 B0 8A 00 00\n' | scriptor -r "$reader" 2>/dev/null)
case "$answer" in
  *": 90 00"*|*"90 00 : Normal processing"*) exit 0 ;;
  *) exit 3 ;;
esac
