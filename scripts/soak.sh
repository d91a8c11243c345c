#!/usr/bin/env bash
# A bounded soak (docs/reliability.md): the chaos cluster (3 nodes, 3-server
# NATS, PostgreSQL) runs a 3-stage pipeline at a steady rate with one fault
# a minute, sampling every node's memory, descriptors and threads and the
# cluster's pace and latency every 5 s; then the verdict (every job once,
# nothing left in the stream) and a plot drawn with gnuplot.
#
#   scripts/soak.sh [minutes (30)] [jobs per second (500)] [seed (1)]
#   SOAK_OUT=dir   where the samples and the plot go (docs/)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30} rate=${2:-500} seed=${3:-1}
out=${SOAK_OUT:-docs}
scripts/bootstrap.sh >/dev/null
if ! command -v gnuplot >/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
    --no-install-recommends gnuplot-nox >/dev/null
fi
scripts/build.sh >/dev/null
samples="$out/soak.tsv"
rc=0
"${BUILD_DIR:-build}/tests/chaos/troupe_chaos" --seed "$seed" \
  --soak $((minutes * 60)) --rate "$rate" --samples "$samples" \
  --settle 600 | tee /tmp/troupe-soak.log | grep -E '^chaos|violation|logs:' ||
  rc=$?
grep -q '^chaos seed=.* PASS' /tmp/troupe-soak.log || rc=1
gnuplot <<GP
set terminal pngcairo size 1200,900 font ",10"
set output "$out/soak.png"
set multiplot layout 3,1 title "troupe soak: $minutes min, $rate jobs/s, one fault a minute (seed $seed)"
set datafile separator "\t"
set key outside right noenhanced
set xlabel "seconds"
set ylabel "RSS (MiB)"
plot for [i=2:4] "$samples" using 1:(column(i)/1024) with lines title columnheader(i)
set ylabel "descriptors / threads"
plot for [i=5:10] "$samples" using 1:i with lines title columnheader(i)
set ylabel "jobs/s, ms"
set y2label "jobs waiting"
set y2tics
plot "$samples" using 1:11 with lines title "done/s", \
     "" using 1:12 with lines title "p50 ms (start to end)", \
     "" using 1:13 with lines title "p99 ms", \
     "" using 1:14 axes x1y2 with lines title "in the stream", \
     "" using 1:15 axes x1y2 with lines title "due, not accepted"
unset multiplot
GP
echo "soak: samples $samples, plot $out/soak.png"
exit "$rc"
