#!/bin/sh
# A checker that dies of a signal.
kill -SEGV $$
