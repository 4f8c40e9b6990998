# speedup_vs_budget.gp — written by kvsim report; run `gnuplot speedup_vs_budget.gp` in this directory to redraw
# speedup_vs_budget.png and speedup_vs_budget.svg from speedup_vs_budget.dat (SI units; scaled here for the axes).
reset
set terminal pngcairo size 960,600 noenhanced
set output 'speedup_vs_budget.png'
set grid
set key outside right top
set title 'speedup vs full: rocketkv, llama3.1-70b on h100-sxm, TP 4, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget.dat' index 0 using 1:2 with linespoints lc 1 pt 7 dt 1 title 'engine 32K', \
     'speedup_vs_budget.dat' index 1 using 1:2 with linespoints lc 2 pt 7 dt 1 title 'engine 128K'
unset output
reset
set terminal svg size 960,600 noenhanced dynamic
set output 'speedup_vs_budget.svg'
set grid
set key outside right top
set title 'speedup vs full: rocketkv, llama3.1-70b on h100-sxm, TP 4, batch 1'
set xlabel 'token budget t'
set ylabel 'decode speedup vs full (x)'
set logscale x 2
plot 'speedup_vs_budget.dat' index 0 using 1:2 with linespoints lc 1 pt 7 dt 1 title 'engine 32K', \
     'speedup_vs_budget.dat' index 1 using 1:2 with linespoints lc 2 pt 7 dt 1 title 'engine 128K'
unset output
