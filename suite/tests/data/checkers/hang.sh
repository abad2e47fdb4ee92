#!/bin/sh
# A checker that never answers.
exec sleep 60
