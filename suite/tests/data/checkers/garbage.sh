#!/bin/sh
# A checker that babbles instead of printing a verdict.
echo "all good I think"
echo '{"schema":"rclab.verdict/0","verdict":"genuine"}'
