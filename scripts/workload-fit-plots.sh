#!/bin/sh
# Plots of `kvsim workload compare --csv FILE`: per metric, synthetic against
# real (one point per method x budget; the diagonal and the +-0.05 band), and
# the real spread over texts (min..max) with the synthetic figure.
# Usage: sh scripts/workload-fit-plots.sh compare.csv OUTDIR
set -eu
CSV=$1
OUT=$2
mkdir -p "$OUT"
for metric in mass_recall topk_recall stage1_survival; do
    grep ",$metric," "$CSV" | awk -F, '{print $4, $7, $5, $6, $1 "@" $2}' > "$OUT/$metric.dat"
    gnuplot <<GP
set terminal pngcairo size 720,640 font ",11" noenhanced
set output "$OUT/$metric.png"
set title "$metric: fitted synthetic workload vs real KV dumps (held-out texts)"
set xlabel "real (mean over held-out dumps; bars: min..max over texts)"
set ylabel "synthetic (fitted workload)"
set xrange [0:1.05]
set yrange [0:1.05]
set key bottom right
set grid
plot x+0.05 with lines dt 2 lc rgb "#888888" title "+-0.05", x-0.05 with lines dt 2 lc rgb "#888888" notitle, \
     x with lines lc rgb "#000000" title "equal", \
     "$OUT/$metric.dat" using 1:2:3:4 with xerrorbars pt 7 ps 0.8 lc rgb "#1f77b4" title "method x budget", \
     "$OUT/$metric.dat" using 1:2:5 with labels offset 0.6,0.6 font ",7" left notitle
GP
done
echo "workload-fit-plots: $OUT/{mass_recall,topk_recall,stage1_survival}.png"
