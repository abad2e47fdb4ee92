#!/bin/sh
# A checker that takes its time, then says genuine (for the kill-and-resume test).
sleep 0.3
echo '{"schema":"rclab.verdict/1","verdict":"genuine","detail":"slow"}'
